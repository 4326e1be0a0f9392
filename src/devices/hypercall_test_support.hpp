// Guest programs that make hypercalls, and the checks of what they leave behind, shared by the
// engine-level hypercall tests (src/emu/hypercall_test.cpp, src/kvm/kvm_hypercall_test.cpp), so
// that both engines are held to the same results (header-only, test code only).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "devices/hypercalls.hpp"
#include "vm/engine.hpp"
#include "vm/machine.hpp"

namespace hv::hypercall_test {

constexpr uint64_t kCodeAddress = 0x10000;
constexpr uint64_t kResults = 0x20000;  // what the programs store, read by the checks below
constexpr uint64_t kText = 0x30000;     // "hello", the console text
constexpr std::string_view kTextBytes = "hello";

// 32-bit protected mode, no paging, at kCodeAddress. Stores the hypercall CPUID leaves and
// CPUID.1:ECX, then calls VERSION, CONSOLE_WRITE(kText, 5), CONSOLE_WRITE with a range past the
// end of RAM, the unknown call 77, and POWER_OFF(0). Were POWER_OFF to return, the debug-exit
// write after it would end the machine with another stop reason.
//   mov eax, 0x40000100 / cpuid / mov [0x20000], eax / [0x20004], ebx / [0x20008], ecx /
//   [0x2000c], edx / mov eax, 0x40000101 / cpuid / mov [0x20010], eax / [0x20014], ebx /
//   [0x20018], ecx / mov eax, 1 / cpuid / mov [0x2001c], ecx
//   mov dx, 0xcb0 / xor eax, eax / out dx, eax / mov [0x20020], eax
//   mov eax, 1 / mov ebx, 0x30000 / mov ecx, 5 / mov dx, 0xcb0 / out dx, eax / mov [0x20024], eax
//   mov eax, 1 / mov ebx, 0xfffff000 / mov ecx, 0x2000 / mov dx, 0xcb0 / out dx, eax /
//   mov [0x20028], eax / mov [0x2002c], edx
//   mov eax, 77 / mov dx, 0xcb0 / out dx, eax / mov [0x20030], eax
//   mov eax, 5 / xor ebx, ebx / mov dx, 0xcb0 / out dx, eax
//   mov al, 0x55 / out 0xf4, al / hlt
constexpr std::array<uint8_t, 167> kProtectedModeProgram = {
    0xb8, 0x00, 0x01, 0x00, 0x40, 0x0f, 0xa2, 0xa3, 0x00, 0x00, 0x02, 0x00, 0x89, 0x1d, 0x04, 0x00,
    0x02, 0x00, 0x89, 0x0d, 0x08, 0x00, 0x02, 0x00, 0x89, 0x15, 0x0c, 0x00, 0x02, 0x00, 0xb8, 0x01,
    0x01, 0x00, 0x40, 0x0f, 0xa2, 0xa3, 0x10, 0x00, 0x02, 0x00, 0x89, 0x1d, 0x14, 0x00, 0x02, 0x00,
    0x89, 0x0d, 0x18, 0x00, 0x02, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0x89, 0x0d, 0x1c,
    0x00, 0x02, 0x00, 0x66, 0xba, 0xb0, 0x0c, 0x31, 0xc0, 0xef, 0xa3, 0x20, 0x00, 0x02, 0x00, 0xb8,
    0x01, 0x00, 0x00, 0x00, 0xbb, 0x00, 0x00, 0x03, 0x00, 0xb9, 0x05, 0x00, 0x00, 0x00, 0x66, 0xba,
    0xb0, 0x0c, 0xef, 0xa3, 0x24, 0x00, 0x02, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xbb, 0x00, 0xf0,
    0xff, 0xff, 0xb9, 0x00, 0x20, 0x00, 0x00, 0x66, 0xba, 0xb0, 0x0c, 0xef, 0xa3, 0x28, 0x00, 0x02,
    0x00, 0x89, 0x15, 0x2c, 0x00, 0x02, 0x00, 0xb8, 0x4d, 0x00, 0x00, 0x00, 0x66, 0xba, 0xb0, 0x0c,
    0xef, 0xa3, 0x30, 0x00, 0x02, 0x00, 0xb8, 0x05, 0x00, 0x00, 0x00, 0x31, 0xdb, 0x66, 0xba, 0xb0,
    0x0c, 0xef, 0xb0, 0x55, 0xe6, 0xf4, 0xf4};

// 64-bit code at kCodeAddress: CONSOLE_WRITE(kText, 5) with garbage above EAX (the number is
// EAX alone), the same with an address above 4 GiB (beyond RAM: 64-bit code passes whole
// registers), then POWER_OFF(0).
//   mov rax, 0x100000001 / mov ebx, 0x30000 / mov ecx, 5 / mov edx, 0xcb0 / out dx, eax /
//   mov [0x20040], rax / mov [0x20048], rdx
//   mov eax, 1 / mov rbx, 0x100030000 / mov ecx, 5 / out dx, eax / mov [0x20050], rax
//   mov eax, 5 / xor ebx, ebx / out dx, eax / mov al, 0x55 / out 0xf4, al / hlt
constexpr std::array<uint8_t, 84> kLongModeProgram = {
    0x48, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xbb, 0x00, 0x00, 0x03,
    0x00, 0xb9, 0x05, 0x00, 0x00, 0x00, 0xba, 0xb0, 0x0c, 0x00, 0x00, 0xef, 0x48, 0x89,
    0x04, 0x25, 0x40, 0x00, 0x02, 0x00, 0x48, 0x89, 0x14, 0x25, 0x48, 0x00, 0x02, 0x00,
    0xb8, 0x01, 0x00, 0x00, 0x00, 0x48, 0xbb, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
    0x00, 0xb9, 0x05, 0x00, 0x00, 0x00, 0xef, 0x48, 0x89, 0x04, 0x25, 0x50, 0x00, 0x02,
    0x00, 0xb8, 0x05, 0x00, 0x00, 0x00, 0x31, 0xdb, 0xef, 0xb0, 0x55, 0xe6, 0xf4, 0xf4};

// Puts `program` and the console text into guest memory.
inline void load(GuestMemory& memory, std::span<const uint8_t> program) {
  ASSERT_TRUE(memory.write(kCodeAddress, program).ok());
  ASSERT_TRUE(memory
                  .write(kText, std::span(reinterpret_cast<const uint8_t*>(kTextBytes.data()),
                                          kTextBytes.size()))
                  .ok());
}

// Runs `vcpu` on its own thread until the machine stops (or 30 s pass).
inline std::optional<StopReason> run_until_stop(Machine& machine, Vcpu& vcpu) {
  std::thread runner([&] { vcpu.run(); });
  std::optional<StopReason> reason = machine.stop().wait(std::chrono::seconds(30));
  if (!reason) {
    machine.stop().request({StopKind::HostError, 1, "test timeout", {}});
  }
  runner.join();
  return reason;
}

inline uint32_t result32(const GuestMemory& memory, uint64_t offset) {
  return *memory.read_object<uint32_t>(kResults + offset);
}
inline uint64_t result64(const GuestMemory& memory, uint64_t offset) {
  return *memory.read_object<uint64_t>(kResults + offset);
}

inline void expect_powered_off(const std::optional<StopReason>& reason) {
  ASSERT_TRUE(reason.has_value()) << "the guest did not stop";
  EXPECT_EQ(reason->kind, StopKind::PowerOff) << reason->message;
  EXPECT_EQ(reason->exit_status, 0);
}

// What kProtectedModeProgram stored. `vmcall_accepted`: the feature bit the engine advertises.
inline void expect_protected_mode_results(const GuestMemory& memory, bool vmcall_accepted) {
  EXPECT_EQ(result32(memory, 0x00), hypercall::kCpuidFeaturesLeaf);
  std::string signature(12, '\0');
  for (size_t i = 0; i < 3; ++i) {
    const uint32_t word = result32(memory, 4 + 4 * i);
    std::memcpy(signature.data() + 4 * i, &word, 4);
  }
  EXPECT_EQ(signature, "hvHypervisor");
  EXPECT_EQ(result32(memory, 0x10), hypercall::kAbiVersion);
  EXPECT_EQ(result32(memory, 0x14), hypercall::kDoorbellPort);
  EXPECT_EQ(result32(memory, 0x18), vmcall_accepted ? hypercall::kFeatureVmcall : 0u);
  EXPECT_TRUE(result32(memory, 0x1c) & (1u << 31)) << "CPUID.1:ECX lacks the hypervisor bit";
  EXPECT_EQ(result32(memory, 0x20), hypercall::kAbiVersion);          // VERSION
  EXPECT_EQ(result32(memory, 0x24), 5u);                              // CONSOLE_WRITE
  EXPECT_EQ(result32(memory, 0x28), static_cast<uint32_t>(-EFAULT));  // bad range: EAX
  EXPECT_EQ(result32(memory, 0x2c), 0xffff'ffffu);                    //   and EDX
  EXPECT_EQ(result32(memory, 0x30), static_cast<uint32_t>(-ENOSYS));  // call 77
}

// What kLongModeProgram stored.
inline void expect_long_mode_results(const GuestMemory& memory) {
  EXPECT_EQ(result64(memory, 0x40), 5u);
  EXPECT_EQ(result64(memory, 0x48), hypercall::kDoorbellPort) << "64-bit calls leave RDX alone";
  EXPECT_EQ(result64(memory, 0x50), hypercall::error_result(EFAULT));
}

// The count of `name` among an engine's exit counts, 0 when absent.
inline uint64_t count_of(const std::vector<ExitCount>& counts, std::string_view name) {
  for (const ExitCount& c : counts) {
    if (c.reason == name) {
      return c.count;
    }
  }
  return 0;
}

}  // namespace hv::hypercall_test
