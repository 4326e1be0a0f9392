#include "container/device_filter.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "common/fd.hpp"

namespace hv::container {

namespace {

// Registers while the program runs: r1 the context, then the fields it holds.
constexpr uint8_t kContext = 1;
constexpr uint8_t kDeviceType = 2;
constexpr uint8_t kAccess = 3;
constexpr uint8_t kMajor = 4;
constexpr uint8_t kMinor = 5;
constexpr uint8_t kScratch = 1;  // the context is dead once its fields are loaded
constexpr uint8_t kResult = 0;

bpf_insn instruction(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn insn{};
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

bpf_insn load_word(uint8_t dst, int16_t offset) {
  return instruction(BPF_LDX | BPF_W | BPF_MEM, dst, kContext, offset, 0);
}
bpf_insn alu32(uint8_t op, uint8_t dst, int32_t imm) {
  return instruction(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn move64(uint8_t dst, int32_t imm) {
  return instruction(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
bpf_insn move32_register(uint8_t dst, uint8_t src) {
  return instruction(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0);
}
// 32-bit compare: the context's fields are 32-bit, so values above 2^31 compare correctly.
bpf_insn jump_if_not_equal(uint8_t reg, uint32_t value) {
  return instruction(BPF_JMP32 | BPF_JNE | BPF_K, reg, 0, 0, static_cast<int32_t>(value));
}
bpf_insn exit_program() {
  return instruction(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

std::optional<uint32_t> access_mask(const std::string& access) {
  uint32_t mask = 0;
  for (char c : access) {
    switch (c) {
      case 'r':
        mask |= BPF_DEVCG_ACC_READ;
        break;
      case 'w':
        mask |= BPF_DEVCG_ACC_WRITE;
        break;
      case 'm':
        mask |= BPF_DEVCG_ACC_MKNOD;
        break;
      default:
        return std::nullopt;
    }
  }
  return mask;
}

constexpr uint32_t kAllAccess = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;

bool fits_u32(std::optional<int64_t> number) {
  return !number || (*number >= 0 && *number <= std::numeric_limits<uint32_t>::max());
}

}  // namespace

std::vector<bpf_insn> compile_device_filter(const std::vector<oci::DeviceRule>& rules) {
  std::vector<bpf_insn> program = {
      load_word(kDeviceType, offsetof(bpf_cgroup_dev_ctx, access_type)),
      alu32(BPF_AND, kDeviceType, 0xffff),
      load_word(kAccess, offsetof(bpf_cgroup_dev_ctx, access_type)),
      alu32(BPF_RSH, kAccess, 16),
      load_word(kMajor, offsetof(bpf_cgroup_dev_ctx, major)),
      load_word(kMinor, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  for (auto rule = rules.rbegin(); rule != rules.rend(); ++rule) {
    const std::optional<uint32_t> mask = access_mask(rule->access);
    // A rule no device can match (no access, an impossible number, an unknown type) is left out.
    if (!mask || *mask == 0 || !fits_u32(rule->major) || !fits_u32(rule->minor) ||
        (rule->type != 'a' && rule->type != 'c' && rule->type != 'b')) {
      continue;
    }
    std::vector<bpf_insn> block;
    std::vector<size_t> jumps;  // in `block`: their offsets point past the block
    if (rule->type != 'a') {
      jumps.push_back(block.size());
      block.push_back(jump_if_not_equal(
          kDeviceType, rule->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK));
    }
    if (*mask != kAllAccess) {
      // Matches when nothing outside the rule's access is asked for.
      block.push_back(move32_register(kScratch, kAccess));
      block.push_back(alu32(BPF_AND, kScratch, static_cast<int32_t>(~*mask & kAllAccess)));
      jumps.push_back(block.size());
      block.push_back(jump_if_not_equal(kScratch, 0));
    }
    if (rule->major) {
      jumps.push_back(block.size());
      block.push_back(jump_if_not_equal(kMajor, static_cast<uint32_t>(*rule->major)));
    }
    if (rule->minor) {
      jumps.push_back(block.size());
      block.push_back(jump_if_not_equal(kMinor, static_cast<uint32_t>(*rule->minor)));
    }
    block.push_back(move64(kResult, rule->allow ? 1 : 0));
    block.push_back(exit_program());
    for (size_t at : jumps) {
      block[at].off = static_cast<int16_t>(block.size() - at - 1);
    }
    program.insert(program.end(), block.begin(), block.end());
    if (jumps.empty()) {
      // Matches every access: the rules before it are never reached (the kernel's verifier
      // refuses unreachable instructions).
      return program;
    }
  }
  // No rule matched: a new v1 devices cgroup allows everything.
  program.push_back(move64(kResult, 1));
  program.push_back(exit_program());
  return program;
}

Status attach_device_filter(int cgroup_dir_fd, std::span<const bpf_insn> program) {
  static constexpr char kLicense[] = "GPL";
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(program.data());
  load.insn_cnt = static_cast<uint32_t>(program.size());
  load.license = reinterpret_cast<uint64_t>(kLicense);
  Fd prog(static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof(load))));
  if (!prog.valid()) {
    const int saved = errno;
    // Again with the verifier's log (it costs milliseconds, so only now), for the error.
    std::string log(64 * 1024, '\0');
    load.log_buf = reinterpret_cast<uint64_t>(log.data());
    load.log_size = static_cast<uint32_t>(log.size());
    load.log_level = 1;
    Fd(static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof(load))));
    log.resize(std::strlen(log.c_str()));
    while (!log.empty() && log.back() == '\n') {
      log.pop_back();
    }
    const size_t last_line = log.rfind('\n');
    errno = saved;
    return Error::from_errno(
        log.empty() ? "cannot load the device cgroup program (bpf)"
                    : "cannot load the device cgroup program (bpf verifier: " +
                          log.substr(last_line == std::string::npos ? 0 : last_line + 1) + ")");
  }
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cgroup_dir_fd);
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (::syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof(attach)) != 0) {
    return Error::from_errno("cannot attach the device cgroup program to the container's cgroup");
  }
  return {};
}

}  // namespace hv::container
