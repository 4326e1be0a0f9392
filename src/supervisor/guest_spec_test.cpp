#include "supervisor/guest_spec.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "container/oci_config.hpp"

#include <nlohmann/json.hpp>

namespace hv {
namespace {

using json = nlohmann::json;

json machine() {
  return {{"name", "vm-1"}, {"engine", "kvm"}, {"kernel", "/boot/vmlinuz"}};
}

json container() {
  return {{"name", "box-1"},
          {"engine", "container"},
          {"rootfs", "/srv/rootfs"},
          {"args", {"/bin/sh", "-c", "echo hi"}}};
}

GuestSpec parse_ok(const json& doc, const std::string& base_dir = "") {
  Result<GuestSpec> spec = parse_guest_spec(doc.dump(), base_dir);
  EXPECT_TRUE(spec.ok()) << doc.dump() << ": " << spec.error().message;
  return spec.ok() ? std::move(*spec) : GuestSpec{};
}

// The error's message, for a document that must be refused with ExitStatus::BadConfig.
std::string text_error(std::string_view text, const std::string& base_dir = "") {
  Result<GuestSpec> spec = parse_guest_spec(text, base_dir);
  EXPECT_FALSE(spec.ok()) << text;
  if (spec.ok()) {
    return "";
  }
  EXPECT_EQ(spec.error().status, ExitStatus::BadConfig) << spec.error().message;
  return spec.error().message;
}

std::string parse_error(const json& doc, const std::string& base_dir = "") {
  return text_error(doc.dump(), base_dir);
}

// ---------------------------------------------------------------------------------------------
// Machines

TEST(GuestSpec, MachineDefaults) {
  const GuestSpec spec = parse_ok(machine());
  EXPECT_EQ(spec.name, "vm-1");
  EXPECT_EQ(spec.engine, GuestEngine::Kvm);
  EXPECT_TRUE(spec.is_machine());
  EXPECT_EQ(spec.kernel, "/boot/vmlinuz");
  EXPECT_TRUE(spec.initrds.empty());
  EXPECT_EQ(spec.cmdline, "");
  EXPECT_EQ(spec.format, "auto");
  EXPECT_EQ(spec.memory_bytes, 128ull << 20);
  EXPECT_EQ(spec.vcpus, 1u);
  EXPECT_TRUE(spec.disks.empty());
  EXPECT_TRUE(spec.nets.empty());
  EXPECT_EQ(spec.console, ConsoleDevice::Serial);
  EXPECT_FALSE(spec.rng);
  EXPECT_FALSE(spec.timeout.has_value());
  EXPECT_FALSE(spec.reboot_on_reset);
  EXPECT_FALSE(spec.limits.memory_bytes || spec.limits.cpus || spec.limits.pids);
}

TEST(GuestSpec, MachineEveryField) {
  json doc = machine();
  doc["engine"] = "emulate";
  doc["initrd"] = {"/boot/a.img", "/boot//b/../b.img"};
  doc["cmdline"] = "console=ttyS0 quiet";
  doc["format"] = "linux";
  doc["memory_mib"] = 512;
  doc["vcpus"] = 4;
  doc["disks"] = {{{"path", "/img/root.img"},
                   {"read_only", true},
                   {"direct", true},
                   {"serial", "root0"},
                   {"interface", "ide"}},
                  {{"path", "/img/data.img"}}};
  doc["nets"] = {{{"tap", "tap0"}}, {{"tap", "tap1"}, {"mac", "52:54:00:AB:cd:01"}}};
  doc["console"] = "virtio";
  doc["rng"] = true;
  doc["timeout_s"] = 10.5;
  doc["on_reset"] = "reboot";
  doc["limits"] = {{"memory_mib", 1024}, {"cpus", 1.5}, {"pids", 64}};
  const GuestSpec spec = parse_ok(doc);
  EXPECT_EQ(spec.engine, GuestEngine::Emulate);
  EXPECT_EQ(spec.initrds, (std::vector<std::string>{"/boot/a.img", "/boot/b.img"}));
  EXPECT_EQ(spec.cmdline, "console=ttyS0 quiet");
  EXPECT_EQ(spec.format, "linux");
  EXPECT_EQ(spec.memory_bytes, 512ull << 20);
  EXPECT_EQ(spec.vcpus, 4u);
  ASSERT_EQ(spec.disks.size(), 2u);
  EXPECT_EQ(spec.disks[0].path, "/img/root.img");
  EXPECT_TRUE(spec.disks[0].read_only);
  EXPECT_TRUE(spec.disks[0].direct);
  EXPECT_EQ(spec.disks[0].serial, "root0");
  EXPECT_EQ(spec.disks[0].interface, DiskConfig::Interface::Ide);
  EXPECT_EQ(spec.disks[1].path, "/img/data.img");
  EXPECT_FALSE(spec.disks[1].read_only);
  EXPECT_FALSE(spec.disks[1].direct);
  EXPECT_EQ(spec.disks[1].serial, "");
  EXPECT_EQ(spec.disks[1].interface, DiskConfig::Interface::Virtio);
  ASSERT_EQ(spec.nets.size(), 2u);
  EXPECT_EQ(spec.nets[0].tap, "tap0");
  EXPECT_EQ(spec.nets[0].mac, (std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}));
  EXPECT_EQ(spec.nets[1].tap, "tap1");
  EXPECT_EQ(spec.nets[1].mac, (std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0xab, 0xcd, 0x01}));
  EXPECT_EQ(spec.console, ConsoleDevice::Virtio);
  EXPECT_TRUE(spec.rng);
  ASSERT_TRUE(spec.timeout.has_value());
  EXPECT_EQ(spec.timeout->count(), 10500);
  EXPECT_TRUE(spec.reboot_on_reset);
  EXPECT_EQ(spec.limits.memory_bytes, 1024ull << 20);
  EXPECT_EQ(spec.limits.cpus, 1.5);
  EXPECT_EQ(spec.limits.pids, 64);
}

TEST(GuestSpec, DefaultMacFollowsTheCardsIndex) {
  json doc = machine();
  doc["nets"] = {{{"tap", "a"}}, {{"tap", "b"}}, {{"tap", "c"}}};
  const GuestSpec spec = parse_ok(doc);
  ASSERT_EQ(spec.nets.size(), 3u);
  EXPECT_EQ(spec.nets[2].mac[5], 0x58);
}

TEST(GuestSpec, InitrdAsOneString) {
  json doc = machine();
  doc["initrd"] = "/boot/initrd.img";
  EXPECT_EQ(parse_ok(doc).initrds, std::vector<std::string>{"/boot/initrd.img"});
}

TEST(GuestSpec, OnResetStop) {
  json doc = machine();
  doc["on_reset"] = "stop";
  EXPECT_FALSE(parse_ok(doc).reboot_on_reset);
}

// ---------------------------------------------------------------------------------------------
// Containers

TEST(GuestSpec, ContainerDefaults) {
  const GuestSpec spec = parse_ok(container());
  EXPECT_EQ(spec.engine, GuestEngine::Container);
  EXPECT_FALSE(spec.is_machine());
  EXPECT_EQ(spec.rootfs, "/srv/rootfs");
  EXPECT_EQ(spec.args, (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
  EXPECT_TRUE(spec.env.empty());
  EXPECT_EQ(spec.cwd, "/");
  EXPECT_EQ(spec.hostname, "");
  EXPECT_EQ(spec.network, "none");
  EXPECT_EQ(spec.bundle, "");
}

TEST(GuestSpec, ContainerEveryField) {
  json doc = container();
  doc["env"] = {"A=1", "PATH=/bin", "EMPTY="};
  doc["cwd"] = "/srv/app/";
  doc["hostname"] = "box.example";
  doc["network"] = "host";
  doc["limits"] = {{"memory_mib", 64}, {"cpus", 0.5}, {"pids", 100}};
  const GuestSpec spec = parse_ok(doc);
  EXPECT_EQ(spec.env, (std::vector<std::string>{"A=1", "PATH=/bin", "EMPTY="}));
  EXPECT_EQ(spec.cwd, "/srv/app");
  EXPECT_EQ(spec.hostname, "box.example");
  EXPECT_EQ(spec.network, "host");
  EXPECT_EQ(spec.limits.memory_bytes, 64ull << 20);
  EXPECT_EQ(spec.limits.cpus, 0.5);
  EXPECT_EQ(spec.limits.pids, 100);
}

TEST(GuestSpec, ContainerFromBundle) {
  const GuestSpec spec =
      parse_ok({{"name", "b"}, {"engine", "container"}, {"bundle", "/var/lib/bundles/b/"}});
  EXPECT_EQ(spec.bundle, "/var/lib/bundles/b");
  EXPECT_EQ(spec.rootfs, "");
  EXPECT_TRUE(spec.args.empty());
}

TEST(GuestSpec, EmptyArgumentsAfterTheProgramAreAllowed) {
  json doc = container();
  doc["args"] = {"/bin/true", ""};
  EXPECT_EQ(parse_ok(doc).args.size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Paths

TEST(GuestSpec, AbsolutePathsAreNormalizedLexically) {
  json doc = machine();
  doc["kernel"] = "/boot/./x/../vmlinuz";
  doc["disks"] = {{{"path", "//img//a.img"}}};
  const GuestSpec spec = parse_ok(doc, "/ignored");
  EXPECT_EQ(spec.kernel, "/boot/vmlinuz");
  EXPECT_EQ(spec.disks[0].path, "/img/a.img");
}

TEST(GuestSpec, RelativePathsResolveAgainstTheBaseDirectory) {
  json doc = machine();
  doc["kernel"] = "vmlinuz";
  doc["initrd"] = {"../images/initrd.img"};
  doc["disks"] = {{{"path", "./disk.img"}}};
  const GuestSpec spec = parse_ok(doc, "/etc/hv/guests");
  EXPECT_EQ(spec.kernel, "/etc/hv/guests/vmlinuz");
  EXPECT_EQ(spec.initrds[0], "/etc/hv/images/initrd.img");
  EXPECT_EQ(spec.disks[0].path, "/etc/hv/guests/disk.img");

  json box = container();
  box["rootfs"] = "rootfs";
  EXPECT_EQ(parse_ok(box, "/srv/box/").rootfs, "/srv/box/rootfs");
}

TEST(GuestSpec, RelativePathsWithoutABaseDirectoryAreRefused) {
  json doc = machine();
  doc["kernel"] = "vmlinuz";
  EXPECT_EQ(parse_error(doc), "\"kernel\" must be an absolute path, not \"vmlinuz\"");
  doc = machine();
  doc["disks"] = {{{"path", "/a.img"}}, {{"path", "b.img"}}};
  EXPECT_TRUE(parse_error(doc).starts_with("\"disks[1].path\" must be an absolute path"));
  doc = machine();
  doc["initrd"] = {"/a", "b"};
  EXPECT_TRUE(parse_error(doc).starts_with("\"initrd[1]\" must be an absolute path"));
  json box = container();
  box["rootfs"] = "rootfs";
  EXPECT_TRUE(parse_error(box).starts_with("\"rootfs\" must be an absolute path"));
}

TEST(GuestSpec, EmptyAndNulStringsAreRefused) {
  json doc = machine();
  doc["kernel"] = "";
  EXPECT_EQ(parse_error(doc), "\"kernel\" must not be empty");
  doc["kernel"] = std::string("/boot/vm\0linuz", 14);
  EXPECT_EQ(parse_error(doc), "\"kernel\" must not contain a NUL character");
  doc = machine();
  doc["cmdline"] = std::string("a\0b", 3);
  EXPECT_EQ(parse_error(doc), "\"cmdline\" must not contain a NUL character");
  json box = container();
  box["args"] = {"/bin/echo", std::string("x\0y", 3)};
  EXPECT_EQ(parse_error(box), "\"args[1]\" must not contain a NUL character");
  box["args"] = {""};
  EXPECT_EQ(parse_error(box), "\"args[0]\" must not be empty");
  box = container();
  box["cwd"] = "relative";
  EXPECT_TRUE(parse_error(box).starts_with("\"cwd\" must be an absolute path"));
  EXPECT_EQ(text_error(R"({"name": "a\u0000b", "engine": "kvm", "kernel": "/k"})"),
            "\"name\" must not contain a NUL character");
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(GuestSpec, UnknownFieldsAreRefused) {
  json doc = machine();
  doc["memroy_mib"] = 64;
  EXPECT_EQ(parse_error(doc), "unknown field \"memroy_mib\" in the guest spec");
  doc = machine();
  doc["disks"] = {{{"path", "/a"}, {"readonly", true}}};
  EXPECT_EQ(parse_error(doc), "unknown field \"readonly\" in \"disks[0]\"");
  doc = machine();
  doc["nets"] = {{{"tap", "t"}, {"ip", "10.0.0.1"}}};
  EXPECT_EQ(parse_error(doc), "unknown field \"ip\" in \"nets[0]\"");
  doc = container();
  doc["limits"] = {{"memory", 64}};
  EXPECT_EQ(parse_error(doc), "unknown field \"memory\" in \"limits\"");
}

TEST(GuestSpec, WrongTypesNameTheFieldAndTheType) {
  const auto with = [](const char* key, json value) {
    json doc = machine();
    doc[key] = std::move(value);
    return parse_error(doc);
  };
  EXPECT_EQ(with("vcpus", "2"), "\"vcpus\" must be an integer");
  EXPECT_EQ(with("vcpus", 2.0), "\"vcpus\" must be an integer");
  EXPECT_EQ(with("memory_mib", nullptr), "\"memory_mib\" must be an integer");
  EXPECT_EQ(with("kernel", 5), "\"kernel\" must be a string");
  EXPECT_EQ(with("rng", "yes"), "\"rng\" must be a boolean");
  EXPECT_EQ(with("timeout_s", "10"), "\"timeout_s\" must be a number");
  EXPECT_EQ(with("disks", json::object()), "\"disks\" must be an array of objects");
  EXPECT_EQ(with("disks", {1}), "\"disks[0]\" must be an object");
  EXPECT_EQ(with("disks", {{{"path", "/a"}, {"direct", 1}}}),
            "\"disks[0].direct\" must be a boolean");
  EXPECT_EQ(with("initrd", 3), "\"initrd\" must be a string or an array of strings");
  EXPECT_EQ(with("limits", {1, 2}), "\"limits\" must be an object");
  EXPECT_EQ(with("limits", {{"cpus", "1"}}), "\"limits.cpus\" must be a number");
  json box = container();
  box["args"] = "/bin/sh";
  EXPECT_EQ(parse_error(box), "\"args\" must be an array of strings");
  EXPECT_EQ(text_error("[1, 2]"), "the guest spec must be a JSON object");
}

TEST(GuestSpec, InvalidValuesAreRefused) {
  const auto with = [](const char* key, json value) {
    json doc = machine();
    doc[key] = std::move(value);
    return parse_error(doc);
  };
  EXPECT_EQ(with("vcpus", 0), "\"vcpus\" must be from 1 to 64, not 0");
  EXPECT_EQ(with("vcpus", 65), "\"vcpus\" must be from 1 to 64, not 65");
  EXPECT_EQ(with("memory_mib", 1), "\"memory_mib\" must be from 2 to 1048576, not 1");
  EXPECT_EQ(with("memory_mib", -5), "\"memory_mib\" must be from 2 to 1048576, not -5");
  EXPECT_EQ(with("memory_mib", 1048577), "\"memory_mib\" must be from 2 to 1048576, not 1048577");
  EXPECT_TRUE(with("format", "pe").starts_with("\"format\" must be one of \"auto\""));
  EXPECT_TRUE(with("console", "vga").starts_with("\"console\" must be one of"));
  EXPECT_TRUE(with("on_reset", "halt").starts_with("\"on_reset\" must be one of"));
  EXPECT_TRUE(with("timeout_s", 0).starts_with("\"timeout_s\" must be"));
  EXPECT_TRUE(with("timeout_s", -1.5).starts_with("\"timeout_s\" must be"));
  EXPECT_TRUE(with("disks", {{{"path", "/a"}, {"interface", "scsi"}}})
                  .starts_with("\"disks[0].interface\" must be one of"));
  EXPECT_TRUE(with("disks", {{{"read_only", true}}}).starts_with("\"disks[0].path\" is required"));
  EXPECT_TRUE(with("disks", {{{"path", "/a"}, {"serial", "a serial that is far too long"}}})
                  .starts_with("\"disks[0].serial\" must be"));
  EXPECT_TRUE(with("nets", {{{"mac", "52:54:00:12:34:56"}}}).starts_with("\"nets[0].tap\" is"));
  EXPECT_TRUE(with("nets", {{{"tap", "a-name-longer-than-15"}}}).starts_with("\"nets[0].tap\""));
  EXPECT_TRUE(with("nets", {{{"tap", "a/b"}}}).starts_with("\"nets[0].tap\""));
  EXPECT_TRUE(with("nets", {{{"tap", "t"}, {"mac", "52:54:00:12:34"}}})
                  .starts_with("\"nets[0].mac\" must be a unicast MAC address like"));
  EXPECT_TRUE(with("nets", {{{"tap", "t"}, {"mac", "01:00:5e:00:00:01"}}})
                  .starts_with("\"nets[0].mac\" must be a unicast"));
}

TEST(GuestSpec, DeviceCountsAsTheVmmAllows) {
  json doc = machine();
  doc["disks"] = {{{"path", "/a"}, {"interface", "ide"}},
                  {{"path", "/b"}, {"interface", "ide"}},
                  {{"path", "/c"}, {"interface", "ide"}}};
  EXPECT_TRUE(parse_error(doc).starts_with("\"disks\" has 3 IDE disks"));
  doc = machine();
  doc["disks"] = json::array();
  for (int i = 0; i < 7; ++i) {
    doc["disks"].push_back({{"path", "/d" + std::to_string(i)}});
  }
  EXPECT_TRUE(parse_error(doc).starts_with("\"disks\" and the other virtio devices"));
  doc = machine();
  doc["disks"] = {{{"path", "/a"}}, {{"path", "/b"}}, {{"path", "/c"}}, {{"path", "/d"}}};
  doc["nets"] = {{{"tap", "t0"}}, {{"tap", "t1"}}};
  doc["rng"] = true;
  EXPECT_TRUE(parse_error(doc).starts_with("\"disks\" and the other virtio devices come to 7"));
  doc = machine();
  doc["disks"] = json::array();
  for (int i = 0; i < 9; ++i) {
    doc["disks"].push_back({{"path", "/d"}});
  }
  EXPECT_EQ(parse_error(doc), "\"disks\" has 9 entries: at most 8");
}

TEST(GuestSpec, RequiredFields) {
  EXPECT_EQ(parse_error(json{{"engine", "kvm"}, {"kernel", "/k"}}), "\"name\" is required");
  EXPECT_TRUE(parse_error(json{{"name", "a"}}).starts_with("\"engine\" is required"));
  EXPECT_TRUE(parse_error(json{{"name", "a"}, {"engine", "xen"}})
                  .starts_with("\"engine\" must be one of \"kvm\", \"emulate\", \"container\""));
  EXPECT_EQ(parse_error(json{{"name", "a"}, {"engine", "kvm"}}),
            "\"kernel\" is required for engine \"kvm\"");
  EXPECT_TRUE(parse_error(json{{"name", "a"}, {"engine", "container"}})
                  .starts_with("\"rootfs\" (or \"bundle\") is required"));
}

TEST(GuestSpec, BadNames) {
  for (const char* name : {"", "../x", "a/b", "..", ".hidden", "-x", "a..b", "a b", "é"}) {
    json doc = machine();
    doc["name"] = name;
    const std::string error = parse_error(doc);
    EXPECT_TRUE(error.starts_with("\"name\" must")) << name << ": " << error;
    EXPECT_FALSE(valid_guest_name(name)) << name;
  }
  json doc = machine();
  doc["name"] = std::string(64, 'a');
  EXPECT_TRUE(parse_error(doc).starts_with("\"name\" must"));
  EXPECT_TRUE(valid_guest_name(std::string(63, 'a')));
  EXPECT_TRUE(valid_guest_name("Web_1.prod-2"));
  EXPECT_TRUE(valid_guest_name("0"));
}

TEST(GuestSpec, EngineMismatchedFields) {
  json doc = machine();
  doc["rootfs"] = "/srv/rootfs";
  EXPECT_EQ(parse_error(doc), "\"rootfs\" is a container field: not allowed with engine \"kvm\"");
  doc = machine();
  doc["engine"] = "emulate";
  doc["args"] = {"/bin/sh"};
  EXPECT_EQ(parse_error(doc), "\"args\" is a container field: not allowed with engine \"emulate\"");
  json box = container();
  box["memory_mib"] = 64;
  EXPECT_EQ(parse_error(box),
            "\"memory_mib\" is a machine field: not allowed with engine \"container\"");
  box = container();
  box["kernel"] = "/k";
  EXPECT_EQ(parse_error(box),
            "\"kernel\" is a machine field: not allowed with engine \"container\"");
}

TEST(GuestSpec, BundleAndRootfsExcludeEachOther) {
  json box = container();
  box["bundle"] = "/b";
  EXPECT_TRUE(parse_error(box).starts_with("\"bundle\" and \"rootfs\" exclude each other"));
  json bundle = {{"name", "b"}, {"engine", "container"}, {"bundle", "/b"}, {"env", {"A=1"}}};
  EXPECT_TRUE(parse_error(bundle).starts_with("\"env\" goes with \"rootfs\""));
}

TEST(GuestSpec, RootfsNeedsArgs) {
  json box = container();
  box.erase("args");
  EXPECT_EQ(parse_error(box), "\"args\" is required with \"rootfs\"");
  box["args"] = json::array();
  EXPECT_EQ(parse_error(box), "\"args\" must not be empty");
}

TEST(GuestSpec, ContainerValuesAreChecked) {
  json box = container();
  box["env"] = {"A=1", "=x"};
  EXPECT_TRUE(parse_error(box).starts_with("\"env[1]\" must be \"KEY=value\""));
  box["env"] = {"NOEQUALS"};
  EXPECT_TRUE(parse_error(box).starts_with("\"env[0]\" must be \"KEY=value\""));
  box = container();
  box["network"] = "bridge";
  EXPECT_TRUE(parse_error(box).starts_with("\"network\" must be one of \"none\", \"host\""));
  box = container();
  box["hostname"] = "a/b";
  EXPECT_TRUE(parse_error(box).starts_with("\"hostname\" must be"));
  box = container();
  box["args"] = json::array();
  for (size_t i = 0; i <= kMaximumSpecArgs; ++i) {
    box["args"].push_back("x");
  }
  EXPECT_EQ(parse_error(box), "\"args\" has 4097 entries: at most 4096");
}

TEST(GuestSpec, LimitsOutOfRange) {
  const auto with = [](json limits) {
    json box = container();
    box["limits"] = std::move(limits);
    return parse_error(box);
  };
  EXPECT_TRUE(with({{"memory_mib", 3}}).starts_with("\"limits.memory_mib\" must be from 4"));
  EXPECT_TRUE(with({{"memory_mib", 1.5}}).starts_with("\"limits.memory_mib\" must be an integer"));
  EXPECT_TRUE(with({{"cpus", 0}}).starts_with("\"limits.cpus\" must be from 0.01"));
  EXPECT_TRUE(with({{"cpus", -1}}).starts_with("\"limits.cpus\" must be from"));
  EXPECT_TRUE(with({{"cpus", 5000}}).starts_with("\"limits.cpus\" must be from"));
  EXPECT_TRUE(with({{"pids", 0}}).starts_with("\"limits.pids\" must be from 1"));
  EXPECT_TRUE(with({{"pids", -3}}).starts_with("\"limits.pids\" must be from 1"));
  // Limits are allowed for machines too (they bound the VMM process).
  json doc = machine();
  doc["limits"] = {{"pids", 8}};
  EXPECT_EQ(parse_ok(doc).limits.pids, 8);
}

TEST(GuestSpec, MalformedInput) {
  EXPECT_TRUE(text_error("{\"name\": ").starts_with("the guest spec is not valid JSON"));
  EXPECT_TRUE(text_error("").starts_with("the guest spec is not valid JSON"));
  EXPECT_EQ(text_error(R"({"name": "a", "name": "b", "engine": "kvm", "kernel": "/k"})"),
            "duplicate field \"name\" in the guest spec");
  EXPECT_EQ(text_error(R"({"name": "a", "engine": "kvm", "kernel": "/k",
                            "limits": {"pids": 1, "pids": 2}})"),
            "duplicate field \"pids\" in a nested object");
}

TEST(GuestSpec, DeepNestingIsRefusedBeforeParsing) {
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  EXPECT_EQ(text_error(deep), "the guest spec nests arrays and objects deeper than 8 levels");
  std::string nested = R"({"name": "a", "engine": "kvm", "kernel": "/k", "limits": )";
  for (int i = 0; i < 8; ++i) {
    nested += R"({"x": )";
  }
  nested += "1" + std::string(9, '}');
  EXPECT_EQ(text_error(nested), "the guest spec nests arrays and objects deeper than 8 levels");
  // Brackets inside strings do not count.
  json doc = machine();
  doc["cmdline"] = std::string(100, '[') + "\\\"{{{{{{{{{{";
  EXPECT_EQ(parse_ok(doc).cmdline, doc["cmdline"].get<std::string>());
}

TEST(GuestSpec, HugeInputIsRefused) {
  json doc = machine();
  doc["cmdline"] = std::string(1 << 20, 'x');
  EXPECT_TRUE(parse_error(doc).starts_with("the guest spec is larger than"));
}

// ---------------------------------------------------------------------------------------------
// Canonical JSON

void expect_round_trip(const GuestSpec& spec) {
  const json canonical = guest_spec_to_json(spec);
  Result<GuestSpec> again = parse_guest_spec(canonical.dump(), "");
  ASSERT_TRUE(again.ok()) << canonical.dump() << ": " << again.error().message;
  EXPECT_EQ(guest_spec_to_json(*again), canonical);
}

TEST(GuestSpec, CanonicalJsonOfAMachine) {
  json doc = machine();
  doc["initrd"] = "/boot/initrd.img";
  doc["disks"] = {{{"path", "/a"}, {"serial", "s1"}, {"interface", "ide"}}, {{"path", "/b"}}};
  doc["nets"] = {{{"tap", "tap0"}}};
  doc["timeout_s"] = 2.25;
  doc["limits"] = {{"cpus", 0.25}};
  const GuestSpec spec = parse_ok(doc);
  const json canonical = guest_spec_to_json(spec);
  EXPECT_EQ(canonical["name"], "vm-1");
  EXPECT_EQ(canonical["engine"], "kvm");
  EXPECT_EQ(canonical["initrd"], json::array({"/boot/initrd.img"}));
  EXPECT_EQ(canonical["format"], "auto");
  EXPECT_EQ(canonical["memory_mib"], 128);
  EXPECT_EQ(canonical["vcpus"], 1);
  EXPECT_EQ(canonical["disks"][0]["serial"], "s1");
  EXPECT_EQ(canonical["disks"][0]["interface"], "ide");
  EXPECT_FALSE(canonical["disks"][1].contains("serial"));
  EXPECT_EQ(canonical["nets"][0]["mac"], "52:54:00:12:34:56");
  EXPECT_EQ(canonical["console"], "serial");
  EXPECT_EQ(canonical["timeout_s"], 2.25);
  EXPECT_EQ(canonical["on_reset"], "stop");
  EXPECT_EQ(canonical["limits"], json::object({{"cpus", 0.25}}));
  EXPECT_FALSE(canonical.contains("rootfs"));
  expect_round_trip(spec);
}

TEST(GuestSpec, CanonicalJsonRoundTrips) {
  json full = machine();
  full["engine"] = "emulate";
  full["initrd"] = {"/a", "/b"};
  full["cmdline"] = "x=\"y\" \x01";
  full["format"] = "flat";
  full["memory_mib"] = 2;
  full["vcpus"] = 64;
  full["disks"] = {{{"path", "/a"}, {"read_only", true}, {"direct", true}}};
  full["nets"] = {{{"tap", "t"}, {"mac", "02:00:00:00:00:ff"}}};
  full["console"] = "virtio";
  full["rng"] = true;
  full["timeout_s"] = 0.001;
  full["on_reset"] = "reboot";
  full["limits"] = {{"memory_mib", 4}, {"cpus", 0.3}, {"pids", 4194304}};
  expect_round_trip(parse_ok(full));
  expect_round_trip(parse_ok(machine()));

  json box = container();
  box["env"] = {"A=1"};
  box["cwd"] = "/tmp";
  box["hostname"] = "h";
  box["network"] = "host";
  box["limits"] = {{"memory_mib", 64}};
  expect_round_trip(parse_ok(box));
  expect_round_trip(parse_ok(container()));
  expect_round_trip(parse_ok({{"name", "b"}, {"engine", "container"}, {"bundle", "/b"}}));

  // Relative paths are stored resolved, so the canonical form needs no base directory.
  json relative = machine();
  relative["kernel"] = "k";
  const json canonical = guest_spec_to_json(parse_ok(relative, "/base"));
  EXPECT_EQ(canonical["kernel"], "/base/k");
  expect_round_trip(parse_ok(relative, "/base"));
}

// ---------------------------------------------------------------------------------------------
// Conversions

TEST(GuestSpec, ToVmConfig) {
  json doc = machine();
  doc["engine"] = "emulate";
  doc["initrd"] = {"/i1", "/i2"};
  doc["cmdline"] = "console=ttyS0";
  doc["format"] = "elf";
  doc["memory_mib"] = 64;
  doc["vcpus"] = 2;
  doc["disks"] = {{{"path", "/d"}, {"read_only", true}}};
  doc["nets"] = {{{"tap", "tap7"}}};
  doc["console"] = "virtio";
  doc["rng"] = true;
  doc["timeout_s"] = 3;
  doc["on_reset"] = "reboot";
  Result<VmConfig> config = to_vm_config(parse_ok(doc));
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->engine, "emulate");
  EXPECT_EQ(config->kernel_path, "/boot/vmlinuz");
  EXPECT_EQ(config->initrd_paths, (std::vector<std::string>{"/i1", "/i2"}));
  EXPECT_EQ(config->cmdline, "console=ttyS0");
  EXPECT_EQ(config->format, KernelFormat::Elf);
  EXPECT_EQ(config->memory_bytes, 64ull << 20);
  EXPECT_EQ(config->cpu_count, 2u);
  ASSERT_EQ(config->disks.size(), 1u);
  EXPECT_EQ(config->disks[0].path, "/d");
  EXPECT_TRUE(config->disks[0].read_only);
  ASSERT_EQ(config->nets.size(), 1u);
  EXPECT_EQ(config->nets[0].tap, "tap7");
  EXPECT_EQ(config->console, ConsoleDevice::Virtio);
  EXPECT_TRUE(config->rng);
  ASSERT_TRUE(config->timeout.has_value());
  EXPECT_EQ(config->timeout->count(), 3000);
  EXPECT_TRUE(config->restart_on_reset);

  Result<VmConfig> defaults = to_vm_config(parse_ok(machine()));
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->engine, "kvm");
  EXPECT_EQ(defaults->memory_bytes, 128ull << 20);
  EXPECT_FALSE(defaults->restart_on_reset);
  EXPECT_FALSE(defaults->timeout.has_value());
}

TEST(GuestSpec, ToVmConfigValidates) {
  GuestSpec spec = parse_ok(machine());
  spec.vcpus = 0;  // built in code, past the parser
  EXPECT_FALSE(to_vm_config(spec).ok());
  spec = parse_ok(machine());
  spec.format = "pe";
  Result<VmConfig> bad_format = to_vm_config(spec);
  ASSERT_FALSE(bad_format.ok());
  EXPECT_EQ(bad_format.error().status, ExitStatus::BadConfig);
  Result<VmConfig> from_container = to_vm_config(parse_ok(container()));
  ASSERT_FALSE(from_container.ok());
  EXPECT_EQ(from_container.error().status, ExitStatus::BadConfig);
}

bool has_namespace(const oci::Config& config, oci::NamespaceType type) {
  return std::ranges::any_of(config.linux.namespaces,
                             [type](const oci::Namespace& ns) { return ns.type == type; });
}

TEST(GuestSpec, ToContainerConfigFromRootfs) {
  json box = container();
  box["env"] = {"A=1", "TERM=dumb"};
  box["cwd"] = "/work";
  Result<oci::Config> config = to_container_config(parse_ok(box), "");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->root.path, "/srv/rootfs");
  EXPECT_FALSE(config->root.readonly);
  ASSERT_TRUE(config->process.has_value());
  EXPECT_EQ(config->process->args, (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
  EXPECT_EQ(config->process->cwd, "/work");
  EXPECT_FALSE(config->process->terminal);
  // The defaults stay unless replaced; new entries follow them.
  const std::vector<std::string>& env = config->process->env;
  EXPECT_NE(std::ranges::find(env, "TERM=dumb"), env.end());
  EXPECT_EQ(std::ranges::find(env, "TERM=xterm"), env.end());
  EXPECT_NE(std::ranges::find(env, "A=1"), env.end());
  EXPECT_TRUE(
      std::ranges::any_of(env, [](const std::string& e) { return e.starts_with("PATH="); }));
  EXPECT_EQ(config->hostname, "box-1");  // the guest's name by default
  EXPECT_TRUE(has_namespace(*config, oci::NamespaceType::Network));
  EXPECT_TRUE(has_namespace(*config, oci::NamespaceType::Pid));
  EXPECT_EQ(config->linux.cgroups_path, "");
  ASSERT_TRUE(config->linux.resources.has_value());
  EXPECT_FALSE(config->linux.resources->memory.has_value());
  EXPECT_FALSE(config->linux.resources->cpu.has_value());
  EXPECT_FALSE(config->linux.resources->pids_limit.has_value());
}

TEST(GuestSpec, ToContainerConfigHostNetworkLimitsAndCgroup) {
  json box = container();
  box["network"] = "host";
  box["hostname"] = "web";
  box["limits"] = {{"memory_mib", 64}, {"cpus", 0.5}, {"pids", 100}};
  Result<oci::Config> config = to_container_config(parse_ok(box), "/hv/guests/box-1");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FALSE(has_namespace(*config, oci::NamespaceType::Network));
  EXPECT_TRUE(has_namespace(*config, oci::NamespaceType::Mount));
  EXPECT_EQ(config->hostname, "web");
  EXPECT_EQ(config->linux.cgroups_path, "/hv/guests/box-1");
  ASSERT_TRUE(config->linux.resources.has_value());
  const oci::Resources& resources = *config->linux.resources;
  ASSERT_TRUE(resources.memory.has_value());
  EXPECT_EQ(resources.memory->limit, int64_t{64} << 20);
  EXPECT_EQ(resources.memory->swap, int64_t{64} << 20);
  ASSERT_TRUE(resources.cpu.has_value());
  EXPECT_EQ(resources.cpu->quota, 50'000);
  EXPECT_EQ(resources.cpu->period, 100'000u);
  EXPECT_EQ(resources.pids_limit, 100);
}

TEST(GuestSpec, ToContainerConfigOfAMachineFails) {
  Result<oci::Config> config = to_container_config(parse_ok(machine()), "");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().status, ExitStatus::BadConfig);
}

TEST(GuestSpec, ToContainerConfigFromAMissingBundle) {
  Result<oci::Config> config = to_container_config(
      parse_ok({{"name", "b"}, {"engine", "container"}, {"bundle", "/nonexistent/hv-bundle"}}), "");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("/nonexistent/hv-bundle/config.json"), std::string::npos)
      << config.error().message;
}

TEST(GuestSpec, ToContainerConfigFromABundle) {
  char dir_template[] = "/tmp/hv-guest-spec-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  {
    std::ofstream out(dir + "/config.json");
    out << container::default_oci_config_json(false);
  }
  json bundle = {{"name", "b"}, {"engine", "container"}, {"bundle", dir}};
  bundle["limits"] = {{"pids", 10}, {"memory_mib", 32}};
  Result<oci::Config> config = to_container_config(parse_ok(bundle), "/hv/b");
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->root.path, dir + "/rootfs");
  ASSERT_TRUE(config->process.has_value());
  EXPECT_FALSE(config->process->terminal);  // the default document asks for one
  EXPECT_EQ(config->process->args, std::vector<std::string>{"sh"});
  EXPECT_EQ(config->linux.cgroups_path, "/hv/b");
  ASSERT_TRUE(config->linux.resources.has_value());
  const oci::Resources& resources = *config->linux.resources;
  EXPECT_EQ(resources.pids_limit, 10);
  ASSERT_TRUE(resources.memory.has_value());
  EXPECT_EQ(resources.memory->limit, int64_t{32} << 20);
  EXPECT_FALSE(resources.cpu.has_value());
  EXPECT_EQ(resources.devices.size(), 1u);  // the bundle's own rules stay
}

TEST(GuestSpec, EngineNames) {
  EXPECT_EQ(engine_name(GuestEngine::Kvm), "kvm");
  EXPECT_EQ(engine_name(GuestEngine::Emulate), "emulate");
  EXPECT_EQ(engine_name(GuestEngine::Container), "container");
}

}  // namespace
}  // namespace hv
