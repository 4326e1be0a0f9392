#include "vmm/vm_runner.hpp"

#include <gtest/gtest.h>

namespace hv {
namespace {

TEST(DiskOption, FileAloneIsAWritableVirtioDisk) {
  Result<DiskConfig> disk = parse_disk_option("/images/root.img");
  ASSERT_TRUE(disk.ok()) << disk.error().to_string();
  EXPECT_EQ(disk->path, "/images/root.img");
  EXPECT_FALSE(disk->read_only);
  EXPECT_EQ(disk->interface, DiskConfig::Interface::Virtio);
}

TEST(DiskOption, OptionsInAnyOrder) {
  Result<DiskConfig> disk = parse_disk_option("d.img,if=ide,ro");
  ASSERT_TRUE(disk.ok()) << disk.error().to_string();
  EXPECT_EQ(disk->path, "d.img");
  EXPECT_TRUE(disk->read_only);
  EXPECT_EQ(disk->interface, DiskConfig::Interface::Ide);
  disk = parse_disk_option("d.img,ro,if=virtio");
  ASSERT_TRUE(disk.ok());
  EXPECT_EQ(disk->interface, DiskConfig::Interface::Virtio);
}

TEST(DiskOption, BadOptionsAreNamed) {
  for (const char* text : {"", ",ro", "d.img,", "d.img,if=scsi", "d.img,readonly"}) {
    Result<DiskConfig> disk = parse_disk_option(text);
    ASSERT_FALSE(disk.ok()) << text;
    EXPECT_EQ(disk.error().status, ExitStatus::Usage) << text;
    EXPECT_NE(disk.error().message.find("--disk"), std::string::npos) << disk.error().message;
  }
}

TEST(DiskOption, AtMostTwoIdeDisks) {
  VmConfig config;
  config.kernel_path = "k";
  for (int i = 0; i < 3; ++i) {
    config.disks.push_back({fmt::format("d{}", i), false, DiskConfig::Interface::Ide});
  }
  Status status = validate(config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("3 IDE disks"), std::string::npos)
      << status.error().message;
  config.disks.pop_back();
  EXPECT_TRUE(validate(config).ok()) << validate(config).error().to_string();
}

}  // namespace
}  // namespace hv
