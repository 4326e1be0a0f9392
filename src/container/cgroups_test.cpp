#include "container/cgroups.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace hv::container {
namespace {

namespace fs = std::filesystem;

CgroupLayout::ControllerReader fixed_controllers(std::string text, int* calls = nullptr) {
  return [text = std::move(text), calls](const std::string&) -> Result<std::string> {
    if (calls != nullptr) {
      ++*calls;
    }
    return text;
  };
}

std::vector<std::string> controllers(const CgroupLayout& layout, const std::string& mount) {
  for (const CgroupHierarchy& hierarchy : layout.v1) {
    if (hierarchy.mount_point == mount) {
      return hierarchy.controllers;
    }
  }
  return {"<not mounted>"};
}

using Names = std::vector<std::string>;

// --- mountinfo parsing ----------------------------------------------------------------------

// The exact lines of the hybrid host hv's CI runs on.
constexpr std::string_view kHybridMountinfo =
    "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(CgroupLayoutParse, Hybrid) {
  // "memory" in cgroup.controllers too: bound to v1, so used from there.
  auto layout = CgroupLayout::parse(kHybridMountinfo, fixed_controllers("hugetlb memory\n"));
  ASSERT_TRUE(layout.ok()) << layout.error().to_string();
  EXPECT_TRUE(layout->hybrid());
  EXPECT_FALSE(layout->pure_v2());
  ASSERT_EQ(layout->v1.size(), 9u);
  for (const char* name :
       {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"}) {
    EXPECT_EQ(controllers(*layout, std::string("/sys/fs/cgroup/") + name), Names{name});
    ASSERT_NE(layout->v1_hierarchy(name), nullptr) << name;
    EXPECT_EQ(layout->v1_hierarchy(name)->mount_point, std::string("/sys/fs/cgroup/") + name);
    EXPECT_EQ(layout->v1_hierarchy(name)->root, "/");
  }
  EXPECT_EQ(controllers(*layout, "/sys/fs/cgroup/systemd"), Names{"name=systemd"});
  EXPECT_EQ(layout->v2_mount, "/sys/fs/cgroup/unified");
  EXPECT_EQ(layout->v2_controllers, Names{"hugetlb"});
  EXPECT_TRUE(layout->v2_has("hugetlb"));
  EXPECT_FALSE(layout->v2_has("memory"));
  EXPECT_EQ(layout->v1_hierarchy("hugetlb"), nullptr);
}

TEST(CgroupLayoutParse, PureV1WithCoMountedControllers) {
  // Ubuntu 18.04 style: optional fields, co-mounted controllers, a named hierarchy with
  // xattr and release_agent, and a second mount of one hierarchy inside a container's rootfs.
  constexpr std::string_view mountinfo =
      "25 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
      "30 24 0:25 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
      "31 30 0:26 / /sys/fs/cgroup/unified\\040dir rw,nosuid shared:10 - tmpfs none rw\n"
      "32 30 0:27 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup "
      "cgroup rw,xattr,name=systemd,release_agent=/lib/systemd/systemd-cgroups-agent\n"
      "35 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - "
      "cgroup cgroup rw,cpu,cpuacct\n"
      "36 30 0:31 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - "
      "cgroup cgroup rw,net_cls,net_prio\n"
      "37 30 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup "
      "cgroup rw,memory\n"
      "38 30 0:33 /docker/abc /var/lib/x/memory rw,relatime - cgroup cgroup rw,memory\n"
      "39 30 0:34 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup "
      "cgroup rw,pids\n"
      "40 30 0:35 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:19 - cgroup "
      "cgroup rw,cpuset,clone_children\n";
  int calls = 0;
  auto layout = CgroupLayout::parse(mountinfo, fixed_controllers("", &calls));
  ASSERT_TRUE(layout.ok()) << layout.error().to_string();
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(layout->hybrid());
  EXPECT_FALSE(layout->pure_v2());
  EXPECT_TRUE(layout->v2_mount.empty());
  ASSERT_EQ(layout->v1.size(), 6u);
  EXPECT_EQ(controllers(*layout, "/sys/fs/cgroup/systemd"), Names{"name=systemd"});
  EXPECT_EQ(controllers(*layout, "/sys/fs/cgroup/cpu,cpuacct"), (Names{"cpu", "cpuacct"}));
  EXPECT_EQ(controllers(*layout, "/sys/fs/cgroup/net_cls,net_prio"),
            (Names{"net_cls", "net_prio"}));
  EXPECT_EQ(controllers(*layout, "/sys/fs/cgroup/cpuset"), Names{"cpuset"});
  // cpu and cpuacct share one mount.
  ASSERT_NE(layout->v1_hierarchy("cpu"), nullptr);
  EXPECT_EQ(layout->v1_hierarchy("cpu"), layout->v1_hierarchy("cpuacct"));
  // The memory hierarchy mounted twice is listed once, at /sys/fs/cgroup.
  ASSERT_NE(layout->v1_hierarchy("memory"), nullptr);
  EXPECT_EQ(layout->v1_hierarchy("memory")->mount_point, "/sys/fs/cgroup/memory");
  EXPECT_EQ(layout->v1_hierarchy("hugetlb"), nullptr);
}

TEST(CgroupLayoutParse, PureV2) {
  constexpr std::string_view mountinfo =
      "24 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
      "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
      "rw,nsdelegate,memory_recursiveprot\n"
      "90 24 0:30 / /var/lib/with\\040space rw,relatime - cgroup2 cgroup2 rw\n";
  std::string asked;
  auto layout =
      CgroupLayout::parse(mountinfo, [&](const std::string& mount) -> Result<std::string> {
        asked = mount;
        return std::string("cpuset cpu io memory hugetlb pids rdma misc\n");
      });
  ASSERT_TRUE(layout.ok()) << layout.error().to_string();
  EXPECT_TRUE(layout->pure_v2());
  EXPECT_FALSE(layout->hybrid());
  EXPECT_TRUE(layout->v1.empty());
  EXPECT_EQ(layout->v2_mount, "/sys/fs/cgroup");
  EXPECT_EQ(asked, "/sys/fs/cgroup");
  EXPECT_EQ(layout->v2_controllers,
            (Names{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}));
}

TEST(CgroupLayoutParse, UnescapesMountPoints) {
  constexpr std::string_view mountinfo =
      "40 31 0:37 / /mnt/my\\040cgroups/pids rw - cgroup cgroup rw,pids\n";
  auto layout = CgroupLayout::parse(mountinfo, fixed_controllers(""));
  ASSERT_TRUE(layout.ok());
  ASSERT_EQ(layout->v1.size(), 1u);
  EXPECT_EQ(layout->v1[0].mount_point, "/mnt/my cgroups/pids");
}

TEST(CgroupLayoutParse, NoCgroupIsAnError) {
  auto layout =
      CgroupLayout::parse("22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n", fixed_controllers(""));
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.error().status, ExitStatus::HostError);
}

TEST(CgroupLayoutParse, DetectOnThisHost) {
  auto layout = CgroupLayout::detect();
  if (!layout.ok()) {
    GTEST_SKIP() << "no cgroups here: " << layout.error().to_string();
  }
  EXPECT_TRUE(!layout->v1.empty() || !layout->v2_mount.empty());
}

// --- conversions ----------------------------------------------------------------------------

TEST(CgroupConversions, SharesToWeight) {
  EXPECT_EQ(cgroup_cpu_shares_to_weight(2), 1u);
  EXPECT_EQ(cgroup_cpu_shares_to_weight(1024), 39u);
  EXPECT_EQ(cgroup_cpu_shares_to_weight(262144), 10000u);
  EXPECT_EQ(cgroup_cpu_shares_to_weight(1), 1u);  // clamped
}

TEST(CgroupConversions, BlkioWeightToIoWeight) {
  EXPECT_EQ(cgroup_blkio_weight_to_io_weight(10), 1u);
  EXPECT_EQ(cgroup_blkio_weight_to_io_weight(1000), 10000u);
  EXPECT_EQ(cgroup_blkio_weight_to_io_weight(500), 4950u);
}

TEST(CgroupConversions, DeviceRules) {
  EXPECT_EQ(cgroup_device_rule({false, 'a', std::nullopt, std::nullopt, "rwm"}), "a *:* rwm");
  EXPECT_EQ(cgroup_device_rule({true, 'c', 1, 3, "rwm"}), "c 1:3 rwm");
  EXPECT_EQ(cgroup_device_rule({true, 'c', 136, std::nullopt, "rw"}), "c 136:* rw");
  EXPECT_EQ(cgroup_device_rule({true, 'b', std::nullopt, 0, "r"}), "b *:0 r");
}

TEST(CgroupConversions, V2SwapMax) {
  auto value = [](std::optional<int64_t> swap, std::optional<int64_t> limit) {
    auto r = cgroup_v2_swap_max(swap, limit);
    if (!r.ok()) {
      return std::string("error");
    }
    return r->value_or("unset");
  };
  EXPECT_EQ(value(std::nullopt, std::nullopt), "unset");
  EXPECT_EQ(value(std::nullopt, 1 << 20), "unset");
  EXPECT_EQ(value(std::nullopt, -1), "max");
  EXPECT_EQ(value(-1, 1 << 20), "max");
  EXPECT_EQ(value(3 << 20, 1 << 20), std::to_string(2 << 20));
  EXPECT_EQ(value(1 << 20, 1 << 20), "0");
  EXPECT_EQ(value(1 << 20, 2 << 20), "error");  // swap below the limit
  EXPECT_EQ(value(1 << 20, std::nullopt), "error");
}

// --- v2 mapping on a fake cgroup v2 tree (no root needed) -----------------------------------

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

void touch(const std::string& path, const std::string& text = "") {
  std::ofstream(path) << text;
}

class CgroupFakeV2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/hv-cgroup-fake-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
    touch(root_ + "/cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
    touch(root_ + "/cgroup.subtree_control");
    fs::create_directories(root_ + "/hv/x");
    touch(root_ + "/hv/cgroup.subtree_control");
    for (const char* name : {"memory.max", "memory.swap.max", "memory.low", "memory.high",
                             "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems", "pids.max",
                             "io.weight", "io.max", "hugetlb.2MB.max", "cgroup.procs"}) {
      touch(root_ + "/hv/x/" + name);
    }
    layout_.v2_mount = root_;
    layout_.v2_controllers = {"cpuset", "cpu", "io", "memory", "hugetlb", "pids"};
  }
  void TearDown() override {
    if (!root_.empty()) {
      fs::remove_all(root_);
    }
  }
  std::string file(const std::string& name) const { return slurp(root_ + "/hv/x/" + name); }

  std::string root_;
  CgroupLayout layout_;
};

TEST_F(CgroupFakeV2Test, MapsResourcesToV2Files) {
  oci::Resources resources;
  resources.memory.emplace();
  resources.memory->limit = 64 << 20;
  resources.memory->swap = 96 << 20;
  resources.memory->reservation = 32 << 20;
  resources.memory->swappiness = 10;  // no v2 equivalent: ignored
  resources.cpu.emplace();
  resources.cpu->shares = 1024;
  resources.cpu->quota = 50000;
  resources.cpu->period = 100000;
  resources.cpu->cpus = "0-1";
  resources.cpu->mems = "0";
  resources.pids_limit = 0;
  resources.block_io.emplace();
  resources.block_io->weight = 500;
  resources.block_io->throttle_read_bps.push_back({8, 0, 1048576});
  resources.hugepage_limits.push_back({"2MB", 4 << 20});
  resources.unified["memory.high"] = "50M";

  auto cgroup = Cgroup::create(layout_, "hv/x", &resources);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  EXPECT_EQ(cgroup->path(), "/hv/x");
  EXPECT_EQ(file("memory.max"), std::to_string(64 << 20));
  EXPECT_EQ(file("memory.swap.max"), std::to_string(32 << 20));
  EXPECT_EQ(file("memory.low"), std::to_string(32 << 20));
  EXPECT_EQ(file("cpu.weight"), "39");
  EXPECT_EQ(file("cpu.max"), "50000 100000");
  EXPECT_EQ(file("cpuset.cpus"), "0-1");
  EXPECT_EQ(file("cpuset.mems"), "0");
  EXPECT_EQ(file("pids.max"), "max");
  EXPECT_EQ(file("io.weight"), "4950");
  EXPECT_EQ(file("io.max"), "8:0 rbps=1048576");
  EXPECT_EQ(file("hugetlb.2MB.max"), std::to_string(4 << 20));
  EXPECT_EQ(file("memory.high"), "50M");
  // Controllers were enabled from the root down (each write replaces the fake file).
  EXPECT_EQ(slurp(root_ + "/cgroup.subtree_control").substr(0, 1), "+");
  EXPECT_EQ(slurp(root_ + "/hv/cgroup.subtree_control").substr(0, 1), "+");
}

TEST_F(CgroupFakeV2Test, QuotaMinusOneIsMax) {
  oci::Resources resources;
  resources.cpu.emplace();
  resources.cpu->quota = -1;
  resources.cpu->period = 250000;
  resources.memory.emplace();
  resources.memory->limit = -1;
  resources.pids_limit = 7;
  auto cgroup = Cgroup::create(layout_, "/hv/x", &resources);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  EXPECT_EQ(file("cpu.max"), "max 250000");
  EXPECT_EQ(file("memory.max"), "max");
  EXPECT_EQ(file("memory.swap.max"), "max");
  EXPECT_EQ(file("pids.max"), "7");
}

TEST_F(CgroupFakeV2Test, DeviceRulesNeedARealCgroupForTheirProgram) {
  // The fake hierarchy is a plain directory: attaching the device program to it fails, and the
  // failure undoes the creation.
  oci::Resources resources;
  resources.devices.push_back({false, 'a', std::nullopt, std::nullopt, "rwm"});
  resources.devices.push_back({true, 'c', 1, 3, "rwm"});
  auto cgroup = Cgroup::create(layout_, "/hv/y", &resources);
  ASSERT_FALSE(cgroup.ok());
  EXPECT_NE(cgroup.error().message.find("device cgroup program"), std::string::npos)
      << cgroup.error().message;
  EXPECT_FALSE(fs::exists(root_ + "/hv/y"));
}

TEST_F(CgroupFakeV2Test, RefusesWhatV2CannotDo) {
  oci::Resources realtime;
  realtime.cpu.emplace();
  realtime.cpu->realtime_runtime = 1000;
  auto r = Cgroup::create(layout_, "/hv/x", &realtime);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, ExitStatus::BadConfig);

  oci::Resources escape;
  escape.unified["../../release_agent"] = "/evil";
  r = Cgroup::create(layout_, "/hv/y", &escape);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, ExitStatus::BadConfig);
  EXPECT_FALSE(fs::exists(root_ + "/hv/y"));

  oci::Resources hugepages;
  hugepages.hugepage_limits.push_back({"3MB", 1 << 20});
  r = Cgroup::create(layout_, "/hv/x", &hugepages);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, ExitStatus::BadConfig);
  EXPECT_NE(r.error().message.find("3MB"), std::string::npos) << r.error().message;

  for (const char* bad : {"/", "", "/hv/../x", "a/.."}) {
    auto invalid = Cgroup::create(layout_, bad, nullptr);
    ASSERT_FALSE(invalid.ok()) << bad;
    EXPECT_EQ(invalid.error().status, ExitStatus::BadConfig) << bad;
  }
}

// Plain directories standing in for v1 hierarchies: which levels create(), destroy() and open()
// remove.
class CgroupFakeV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/hv-cgroup-fake-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
    fs::create_directories(root_ + "/pids");
    fs::create_directories(root_ + "/systemd");
    layout_.v1.push_back({root_ + "/pids", "/", {"pids"}});
    layout_.v1.push_back({root_ + "/systemd", "/", {"name=systemd"}});
  }
  void TearDown() override {
    if (!root_.empty()) {
      fs::remove_all(root_);
    }
  }
  bool in_both(const std::string& path) const {
    return fs::is_directory(root_ + "/pids" + path) && fs::is_directory(root_ + "/systemd" + path);
  }
  bool in_neither(const std::string& path) const {
    return !fs::exists(root_ + "/pids" + path) && !fs::exists(root_ + "/systemd" + path);
  }

  std::string root_;
  CgroupLayout layout_;
};

TEST_F(CgroupFakeV1Test, DestroyRemovesTheLevelsItCreated) {
  auto cgroup = Cgroup::create(layout_, "/a/b/c", nullptr);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  EXPECT_TRUE(in_both("/a/b/c"));
  ASSERT_TRUE(cgroup->destroy().ok());
  EXPECT_TRUE(in_neither("/a"));
}

TEST_F(CgroupFakeV1Test, DestroyKeepsLevelsThatExisted) {
  fs::create_directories(root_ + "/pids/a");
  fs::create_directories(root_ + "/systemd/a/b");
  auto cgroup = Cgroup::create(layout_, "a/b/c", nullptr);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  ASSERT_TRUE(cgroup->destroy().ok());
  EXPECT_TRUE(in_neither("/a/b/c"));
  EXPECT_FALSE(fs::exists(root_ + "/pids/a/b"));
  EXPECT_TRUE(fs::is_directory(root_ + "/pids/a"));
  EXPECT_TRUE(fs::is_directory(root_ + "/systemd/a/b"));
}

TEST_F(CgroupFakeV1Test, FailedCreateRemovesWhatItCreated) {
  fs::create_directories(root_ + "/systemd/a");
  oci::Resources resources;
  resources.pids_limit = 5;  // the fake hierarchy has no pids.max
  auto cgroup = Cgroup::create(layout_, "/a/b", &resources);
  ASSERT_FALSE(cgroup.ok());
  EXPECT_EQ(cgroup.error().status, ExitStatus::BadConfig);
  EXPECT_NE(cgroup.error().message.find("pids.max"), std::string::npos);
  EXPECT_TRUE(in_neither("/a/b"));
  EXPECT_FALSE(fs::exists(root_ + "/pids/a"));
  EXPECT_TRUE(fs::is_directory(root_ + "/systemd/a"));
}

TEST_F(CgroupFakeV1Test, OpenedCgroupRemovesTheLeafAndAnEmptyHvParent) {
  ASSERT_TRUE(Cgroup::create(layout_, "/hv/one", nullptr).ok());
  ASSERT_TRUE(Cgroup::create(layout_, "/hv/two", nullptr).ok());
  ASSERT_TRUE(Cgroup::create(layout_, "/other/three", nullptr).ok());

  auto one = Cgroup::open(layout_, "/hv/one");
  ASSERT_TRUE(one.ok()) << one.error().to_string();
  ASSERT_TRUE(one->destroy().ok());
  EXPECT_TRUE(in_neither("/hv/one"));
  EXPECT_TRUE(in_both("/hv"));  // "two" is still there

  auto two = Cgroup::open(layout_, "hv/two");
  ASSERT_TRUE(two.ok());
  ASSERT_TRUE(two->destroy().ok());
  EXPECT_TRUE(in_neither("/hv"));

  auto three = Cgroup::open(layout_, "/other/three");
  ASSERT_TRUE(three.ok());
  ASSERT_TRUE(three->destroy().ok());
  EXPECT_TRUE(in_neither("/other/three"));
  EXPECT_TRUE(in_both("/other"));  // not ours

  EXPECT_FALSE(Cgroup::open(layout_, "/hv/none").ok());
}

TEST(CgroupFakeHybrid, UnifiedKeyOfAV1Controller) {
  CgroupLayout layout;
  layout.v1.push_back({"/nonexistent/memory", "/", {"memory"}});
  layout.v2_mount = "/nonexistent/unified";
  oci::Resources resources;
  resources.unified["memory.high"] = "1G";
  auto r = Cgroup::create(layout, "/hv/x", &resources);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, ExitStatus::BadConfig);

  oci::Resources pids;  // no pids controller anywhere
  pids.pids_limit = 5;
  r = Cgroup::create(layout, "/hv/x", &pids);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, ExitStatus::BadConfig);
  EXPECT_NE(r.error().message.find("pids"), std::string::npos);
}

// --- real cgroups on this host (root) -------------------------------------------------------

std::atomic<int> g_counter{0};

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

class CgroupHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "creating cgroups needs root";
    }
    auto layout = CgroupLayout::detect();
    if (!layout.ok()) {
      GTEST_SKIP() << "no cgroups: " << layout.error().to_string();
    }
    layout_ = *layout;
    top_ = fmt::format("hv-test-{}-{}", ::getpid(), g_counter++);
    path_ = "/" + top_ + "/c";
    for (const std::string& mount : mounts()) {
      const std::string probe = mount + "/" + top_;
      if (::mkdir(probe.c_str(), 0755) != 0) {
        GTEST_SKIP() << mount << " is not writable: " << std::strerror(errno);
      }
      ::rmdir(probe.c_str());
    }
    ready_ = true;
  }

  void TearDown() override {
    if (!ready_) {
      return;
    }
    for (int round = 0; round < 200; ++round) {
      bool left = false;
      for (const std::string& mount : mounts()) {
        if (is_dir(mount + "/" + top_)) {
          left = true;
          cleanup(mount + "/" + top_);
        }
      }
      if (!left) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (pid_t child : children_) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
    }
  }

  // Kills whatever is in `dir` and removes it, deepest first.
  static void cleanup(const std::string& dir) {
    if (DIR* stream = ::opendir(dir.c_str())) {
      std::vector<std::string> children;
      while (const dirent* entry = ::readdir(stream)) {
        const std::string name = entry->d_name;
        if (entry->d_type == DT_DIR && name != "." && name != "..") {
          children.push_back(name);
        }
      }
      ::closedir(stream);
      for (const std::string& child : children) {
        cleanup(dir + "/" + child);
      }
    }
    if (fs::exists(dir + "/freezer.state")) {
      touch(dir + "/freezer.state", "THAWED");
    }
    std::istringstream procs(slurp(dir + "/cgroup.procs"));
    for (pid_t pid; procs >> pid;) {
      ::kill(pid, SIGKILL);
    }
    ::rmdir(dir.c_str());
  }

  std::vector<std::string> mounts() const {
    std::vector<std::string> result;
    for (const CgroupHierarchy& hierarchy : layout_.v1) {
      result.push_back(hierarchy.mount_point);
    }
    if (!layout_.v2_mount.empty()) {
      result.push_back(layout_.v2_mount);
    }
    return result;
  }

  // The directory of `controller` (a v1 name) for `path_`, or "" when not available.
  std::string dir_of(const std::string& v1_name, const std::string& v2_name) const {
    if (const CgroupHierarchy* hierarchy = layout_.v1_hierarchy(v1_name)) {
      return hierarchy->mount_point + path_;
    }
    if (layout_.v2_has(v2_name)) {
      return layout_.v2_mount + path_;
    }
    return "";
  }
  bool v1(const std::string& controller) const {
    return layout_.v1_hierarchy(controller) != nullptr;
  }

  void expect_gone(const std::string& what) const {
    for (const std::string& mount : mounts()) {
      EXPECT_FALSE(fs::exists(mount + path_)) << what << ": " << mount + path_;
      EXPECT_FALSE(fs::exists(mount + "/" + top_)) << what << ": " << mount + "/" + top_;
    }
  }

  pid_t spawn_paused() {
    const pid_t pid = ::fork();
    if (pid == 0) {
      for (;;) {
        ::pause();
      }
    }
    children_.push_back(pid);
    return pid;
  }

  // Forks a child that waits for a byte on a pipe, then runs `body` and _exits with its value.
  template <typename Body>
  pid_t spawn_gated(int& gate, Body body) {
    int fds[2];
    if (::pipe(fds) != 0) {
      return -1;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[1]);
      char byte;
      if (::read(fds[0], &byte, 1) != 1) {
        ::_exit(99);
      }
      ::_exit(body());
    }
    ::close(fds[0]);
    gate = fds[1];
    children_.push_back(pid);
    return pid;
  }
  static void open_gate(int gate) {
    const char byte = 1;
    EXPECT_EQ(::write(gate, &byte, 1), 1);
    ::close(gate);
  }
  int wait_child(pid_t pid) {
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    children_.erase(std::remove(children_.begin(), children_.end(), pid), children_.end());
    return status;
  }

  CgroupLayout layout_;
  std::string top_;
  std::string path_;
  std::vector<pid_t> children_;
  bool ready_ = false;
};

TEST_F(CgroupHostTest, CreateAppliesResourcesInEveryHierarchy) {
  oci::Resources resources;
  resources.memory.emplace();
  resources.memory->limit = 64 << 20;
  resources.pids_limit = 20;
  resources.cpu.emplace();
  resources.cpu->shares = 512;
  resources.cpu->quota = 50000;
  resources.cpu->period = 100000;
  resources.cpu->cpus = "0";
  resources.cpu->mems = "0";
  resources.devices.push_back({false, 'a', std::nullopt, std::nullopt, "rwm"});
  if (v1("devices")) {
    resources.devices.push_back({true, 'c', 1, 3, "rwm"});
    resources.devices.push_back({true, 'c', 1, 5, "rw"});
    resources.devices.push_back({true, 'c', 136, std::nullopt, "rwm"});
  }
  const bool hugetlb = fs::exists("/sys/kernel/mm/hugepages/hugepages-2048kB") &&
                       (v1("hugetlb") || layout_.v2_has("hugetlb"));
  if (hugetlb) {
    resources.hugepage_limits.push_back({"2MB", 4 << 20});
  }

  auto cgroup = Cgroup::create(layout_, path_, &resources);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  EXPECT_EQ(cgroup->path(), path_);
  for (const std::string& mount : mounts()) {
    EXPECT_TRUE(is_dir(mount + path_)) << mount;
  }

  const std::string memory = dir_of("memory", "memory");
  EXPECT_EQ(slurp(memory + (v1("memory") ? "/memory.limit_in_bytes" : "/memory.max")),
            std::to_string(64 << 20));
  EXPECT_EQ(slurp(dir_of("pids", "pids") + "/pids.max"), "20");
  const std::string cpu = dir_of("cpu", "cpu");
  if (v1("cpu")) {
    EXPECT_EQ(slurp(cpu + "/cpu.shares"), "512");
    EXPECT_EQ(slurp(cpu + "/cpu.cfs_quota_us"), "50000");
    EXPECT_EQ(slurp(cpu + "/cpu.cfs_period_us"), "100000");
  } else {
    EXPECT_EQ(slurp(cpu + "/cpu.weight"), std::to_string(cgroup_cpu_shares_to_weight(512)));
    EXPECT_EQ(slurp(cpu + "/cpu.max"), "50000 100000");
  }
  EXPECT_EQ(slurp(dir_of("cpuset", "cpuset") + "/cpuset.cpus"), "0");
  EXPECT_EQ(slurp(dir_of("cpuset", "cpuset") + "/cpuset.mems"), "0");
  if (v1("cpuset")) {
    // The intermediate level got the parent's cpus and mems.
    const std::string top = layout_.v1_hierarchy("cpuset")->mount_point + "/" + top_;
    EXPECT_FALSE(slurp(top + "/cpuset.cpus").empty());
    EXPECT_FALSE(slurp(top + "/cpuset.mems").empty());
  }
  if (v1("devices")) {
    const std::string list = slurp(dir_of("devices", "") + "/devices.list");
    EXPECT_NE(list.find("c 1:3 rwm"), std::string::npos) << list;
    EXPECT_NE(list.find("c 1:5 rw"), std::string::npos) << list;
    EXPECT_NE(list.find("c 136:* rwm"), std::string::npos) << list;
    EXPECT_EQ(list.find("a *:* rwm"), std::string::npos) << list;
  }
  if (hugetlb) {
    const std::string dir = dir_of("hugetlb", "hugetlb");
    EXPECT_EQ(slurp(dir + (v1("hugetlb") ? "/hugetlb.2MB.limit_in_bytes" : "/hugetlb.2MB.max")),
              std::to_string(4 << 20));
  }

  ASSERT_TRUE(cgroup->destroy().ok());
  expect_gone("after destroy");
}

TEST_F(CgroupHostTest, AddProcessAndPids) {
  auto cgroup = Cgroup::create(layout_, path_, nullptr);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  const pid_t child = spawn_paused();
  ASSERT_TRUE(cgroup->add_process(child).ok());
  auto pids = cgroup->pids();
  ASSERT_TRUE(pids.ok()) << pids.error().to_string();
  EXPECT_EQ(*pids, std::vector<pid_t>{child});
  for (const std::string& mount : mounts()) {
    EXPECT_EQ(slurp(mount + path_ + "/cgroup.procs"), std::to_string(child)) << mount;
  }

  // Another runtime command reattaches by path.
  auto opened = Cgroup::open(layout_, path_);
  ASSERT_TRUE(opened.ok()) << opened.error().to_string();
  auto opened_pids = opened->pids();
  ASSERT_TRUE(opened_pids.ok());
  EXPECT_EQ(*opened_pids, *pids);

  ASSERT_TRUE(cgroup->destroy().ok());
  const int status = wait_child(child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  expect_gone("after destroy");
  EXPECT_FALSE(Cgroup::open(layout_, path_).ok());
}

TEST_F(CgroupHostTest, FreezeAndThaw) {
  auto cgroup = Cgroup::create(layout_, path_, nullptr);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  const pid_t child = spawn_paused();
  ASSERT_TRUE(cgroup->add_process(child).ok());
  ASSERT_FALSE(*cgroup->frozen());

  ASSERT_TRUE(cgroup->freeze().ok());
  EXPECT_TRUE(*cgroup->frozen());
  if (v1("freezer")) {
    EXPECT_EQ(slurp(dir_of("freezer", "") + "/freezer.state"), "FROZEN");
  } else {
    EXPECT_NE(slurp(layout_.v2_mount + path_ + "/cgroup.events").find("frozen 1"),
              std::string::npos);
  }

  ASSERT_TRUE(cgroup->thaw().ok());
  EXPECT_FALSE(*cgroup->frozen());
  if (v1("freezer")) {
    EXPECT_EQ(slurp(dir_of("freezer", "") + "/freezer.state"), "THAWED");
  }

  // A frozen cgroup is still destroyed: its processes die.
  ASSERT_TRUE(cgroup->freeze().ok());
  ASSERT_TRUE(cgroup->destroy().ok());
  const int status = wait_child(child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  expect_gone("after destroy");
}

TEST_F(CgroupHostTest, PidsLimitStopsForkBomb) {
  if (!v1("pids") && !layout_.v2_has("pids")) {
    GTEST_SKIP() << "no pids controller";
  }
  constexpr int kLimit = 5;
  oci::Resources resources;
  resources.pids_limit = kLimit;
  auto cgroup = Cgroup::create(layout_, path_, &resources);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();

  int gate = -1;
  const pid_t bomb = spawn_gated(gate, [] {
    std::vector<pid_t> forked;
    bool refused = false;
    for (int i = 0; i < 10; ++i) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        for (;;) {
          ::pause();
        }
      }
      if (pid > 0) {
        forked.push_back(pid);
      } else if (errno == EAGAIN) {
        refused = true;
      }
    }
    for (pid_t pid : forked) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    return static_cast<int>(forked.size()) + (refused ? 100 : 0);
  });
  ASSERT_GT(bomb, 0);
  ASSERT_TRUE(cgroup->add_process(bomb).ok());
  open_gate(gate);
  const int status = wait_child(bomb);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  const int code = WEXITSTATUS(status);
  EXPECT_GE(code, 100) << "no fork failed with EAGAIN";
  const int forked = code % 100;
  EXPECT_LE(forked, kLimit);
  EXPECT_EQ(forked, kLimit - 1);  // the bomb itself counts
  ASSERT_TRUE(cgroup->destroy().ok());
  expect_gone("after destroy");
}

TEST_F(CgroupHostTest, MemoryHogIsOomKilled) {
  oci::Resources resources;
  resources.memory.emplace();
  resources.memory->limit = 32 << 20;
  resources.memory->swap = 32 << 20;  // no swap
  auto cgroup = Cgroup::create(layout_, path_, &resources);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  if (v1("memory") && fs::exists(dir_of("memory", "") + "/memory.memsw.limit_in_bytes")) {
    EXPECT_EQ(slurp(dir_of("memory", "") + "/memory.memsw.limit_in_bytes"),
              std::to_string(32 << 20));
  }
  EXPECT_EQ(*cgroup->oom_kill_count(), 0u);

  int gate = -1;
  const pid_t hog = spawn_gated(gate, [] {
    constexpr size_t kSize = 256u << 20;
    void* memory =
        ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
      return 98;
    }
    auto* bytes = static_cast<volatile char*>(memory);
    for (size_t i = 0; i < kSize; i += 4096) {
      bytes[i] = 1;
    }
    return 0;
  });
  ASSERT_GT(hog, 0);
  ASSERT_TRUE(cgroup->add_process(hog).ok());
  open_gate(gate);
  const int status = wait_child(hog);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  auto kills = cgroup->oom_kill_count();
  ASSERT_TRUE(kills.ok()) << kills.error().to_string();
  EXPECT_GE(*kills, 1u);
  ASSERT_TRUE(cgroup->destroy().ok());
  expect_gone("after destroy");
}

TEST_F(CgroupHostTest, KillAllAndDestroyRemoveEverything) {
  auto cgroup = Cgroup::create(layout_, path_, nullptr);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  const pid_t first = spawn_paused();
  const pid_t second = spawn_paused();
  const pid_t third = spawn_paused();
  ASSERT_TRUE(cgroup->add_process(first).ok());
  ASSERT_TRUE(cgroup->add_process(second).ok());
  ASSERT_TRUE(cgroup->add_process(third).ok());
  // The container made a sub-cgroup of its own (as with a cgroup namespace) in every hierarchy
  // and moved a process there.
  for (const std::string& mount : mounts()) {
    const std::string sub = mount + path_ + "/sub";
    ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0) << sub;
    if (fs::exists(sub + "/cpuset.cpus")) {
      touch(sub + "/cpuset.cpus", slurp(mount + path_ + "/cpuset.cpus"));
      touch(sub + "/cpuset.mems", slurp(mount + path_ + "/cpuset.mems"));
    }
    touch(sub + "/cgroup.procs", std::to_string(second));
  }
  auto pids = cgroup->pids();
  ASSERT_TRUE(pids.ok());
  std::vector<pid_t> expected{first, second, third};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(*pids, expected);

  // A plain signal reaches everyone and does not wait.
  ASSERT_TRUE(cgroup->kill_all(SIGTERM).ok());
  int status = wait_child(third);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);

  ASSERT_TRUE(cgroup->kill_all(SIGKILL).ok());
  EXPECT_TRUE(cgroup->pids()->empty());
  for (pid_t child : {first, second}) {
    status = wait_child(child);
    EXPECT_TRUE(WIFSIGNALED(status)) << child;
  }

  ASSERT_TRUE(cgroup->destroy().ok());
  expect_gone("after destroy");
  // destroy() twice is harmless.
  EXPECT_TRUE(cgroup->destroy().ok());
}

TEST_F(CgroupHostTest, FailurePartWayLeavesNothing) {
  oci::Resources resources;
  resources.memory.emplace();
  resources.memory->limit = 64 << 20;
  resources.pids_limit = 20;
  resources.cpu.emplace();
  resources.cpu->cpus = "99999";
  auto cgroup = Cgroup::create(layout_, path_, &resources);
  ASSERT_FALSE(cgroup.ok());
  const std::string message = cgroup.error().to_string();
  EXPECT_EQ(cgroup.error().status, ExitStatus::BadConfig) << message;
  const std::string expected =
      fmt::format("cannot write \"99999\" to {}/cpuset.cpus", dir_of("cpuset", "cpuset"));
  EXPECT_EQ(message.substr(0, expected.size()), expected) << message;
  expect_gone("after a failed create");

  oci::Resources hugepages;
  hugepages.hugepage_limits.push_back({"3MB", 1 << 20});
  cgroup = Cgroup::create(layout_, path_, &hugepages);
  ASSERT_FALSE(cgroup.ok());
  EXPECT_EQ(cgroup.error().status, ExitStatus::BadConfig);
  EXPECT_NE(cgroup.error().message.find("3MB"), std::string::npos) << cgroup.error().message;
  expect_gone("after a failed create");
}

TEST_F(CgroupHostTest, DestroyKeepsParentsItDidNotCreate) {
  // The parent exists already (another container, or an administrator's).
  for (const std::string& mount : mounts()) {
    const std::string top = mount + "/" + top_;
    ASSERT_EQ(::mkdir(top.c_str(), 0755), 0) << top;
    if (fs::exists(top + "/cpuset.cpus")) {
      touch(top + "/cpuset.cpus", slurp(mount + "/cpuset.cpus"));
      touch(top + "/cpuset.mems", slurp(mount + "/cpuset.mems"));
    }
  }
  oci::Resources resources;
  resources.pids_limit = 10;
  auto cgroup = Cgroup::create(layout_, path_, &resources);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  ASSERT_TRUE(cgroup->destroy().ok());
  for (const std::string& mount : mounts()) {
    EXPECT_FALSE(fs::exists(mount + path_)) << mount;
    EXPECT_TRUE(is_dir(mount + "/" + top_)) << mount;
  }

  // An opened cgroup removes only its leaf (its parent is not "/hv").
  cgroup = Cgroup::create(layout_, path_, nullptr);
  ASSERT_TRUE(cgroup.ok()) << cgroup.error().to_string();
  auto opened = Cgroup::open(layout_, path_);
  ASSERT_TRUE(opened.ok());
  ASSERT_TRUE(opened->destroy().ok());
  for (const std::string& mount : mounts()) {
    EXPECT_FALSE(fs::exists(mount + path_)) << mount;
    EXPECT_TRUE(is_dir(mount + "/" + top_)) << mount;
  }
}

TEST_F(CgroupHostTest, MovedCgroupKeepsWorking) {
  auto created = Cgroup::create(layout_, path_, nullptr);
  ASSERT_TRUE(created.ok()) << created.error().to_string();
  Cgroup cgroup = std::move(created).value();
  Cgroup moved = std::move(cgroup);
  EXPECT_EQ(moved.path(), path_);
  ASSERT_TRUE(moved.destroy().ok());
  expect_gone("after destroy");
}

}  // namespace
}  // namespace hv::container
