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
    config.disks.push_back(
        {.path = fmt::format("d{}", i), .interface = DiskConfig::Interface::Ide});
  }
  Status status = validate(config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("3 IDE disks"), std::string::npos)
      << status.error().message;
  config.disks.pop_back();
  EXPECT_TRUE(validate(config).ok()) << validate(config).error().to_string();
}

TEST(DiskOption, DirectAndSerial) {
  Result<DiskConfig> disk = parse_disk_option("d.img,serial=root0,direct");
  ASSERT_TRUE(disk.ok()) << disk.error().to_string();
  EXPECT_TRUE(disk->direct);
  EXPECT_EQ(disk->serial, "root0");
  EXPECT_EQ(disk->interface, DiskConfig::Interface::Virtio);
}

TEST(VirtioDevices, CountedAndLimitedByTheInterruptLines) {
  VmConfig config;
  config.kernel_path = "k";
  config.disks.push_back({.path = "ide.img", .interface = DiskConfig::Interface::Ide});
  config.disks.push_back({.path = "a.img"});
  config.nets.push_back({.tap = "tap0"});
  config.console = ConsoleDevice::Virtio;
  config.rng = true;
  EXPECT_EQ(virtio_device_count(config), 4u);  // the IDE disk is no virtio device
  EXPECT_TRUE(validate(config).ok());
  for (int i = 0; i < 3; ++i) {
    config.disks.push_back({.path = fmt::format("more{}.img", i)});
  }
  EXPECT_EQ(virtio_device_count(config), 7u);
  Status status = validate(config);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().status, ExitStatus::Usage);
  EXPECT_NE(status.error().message.find("7 virtio devices"), std::string::npos)
      << status.error().message;
}

TEST(NetOption, TapWithDefaultAndGivenMac) {
  Result<NetConfig> net = parse_net_option("tap=hvtap0", 0);
  ASSERT_TRUE(net.ok()) << net.error().to_string();
  EXPECT_EQ(net->tap, "hvtap0");
  EXPECT_EQ(net->mac, (std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}));
  net = parse_net_option("tap=hvtap1", 1);
  ASSERT_TRUE(net.ok());
  EXPECT_EQ(net->mac[5], 0x57);
  net = parse_net_option("mac=02:AB:cd:00:01:ff,tap=t", 0);
  ASSERT_TRUE(net.ok()) << net.error().to_string();
  EXPECT_EQ(net->mac, (std::array<uint8_t, 6>{0x02, 0xab, 0xcd, 0x00, 0x01, 0xff}));
}

TEST(NetOption, BadOptionsAreNamed) {
  for (const char* text :
       {"", "tap=", "user", "tap=t,mac=52:54:00:12:34", "tap=t,mac=52:54:00:12:34:567",
        "tap=t,mac=52-54-00-12-34-56", "tap=t,mac=01:00:5e:00:00:01", "tap=t,mac=zz:54:00:12:34:56",
        "tap=a-name-far-too-long-for-linux"}) {
    Result<NetConfig> net = parse_net_option(text, 0);
    EXPECT_FALSE(net.ok()) << text;
    if (!net.ok()) {
      EXPECT_EQ(net.error().status, ExitStatus::Usage) << text;
    }
  }
}

TEST(ConsoleOption, SerialOrVirtio) {
  EXPECT_EQ(parse_console_option("serial").value(), ConsoleDevice::Serial);
  EXPECT_EQ(parse_console_option("virtio").value(), ConsoleDevice::Virtio);
  Result<ConsoleDevice> bad = parse_console_option("hvc0");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("hvc0"), std::string::npos);
}

}  // namespace
}  // namespace hv
