// Helpers for the boot tests: guest memory, byte patching, and synthetic ELF, multiboot and
// bzImage files assembled in memory.
#pragma once

#include <elf.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "boot/kernel_loader.hpp"
#include "common/error.hpp"
#include "vm/guest_memory.hpp"

namespace hv::boot::testing {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

inline GuestMemory make_memory(uint64_t size) {
  Result<GuestMemory> memory = GuestMemory::create(size);
  if (!memory.ok()) {
    ADD_FAILURE() << memory.error().to_string();
    std::abort();
  }
  return std::move(memory).value();
}

template <typename T>
T peek(const GuestMemory& memory, uint64_t gpa) {
  Result<T> value = memory.read_object<T>(gpa);
  EXPECT_TRUE(value.ok()) << "reading guest address " << gpa;
  return value.ok() ? value.value() : T{};
}

inline std::vector<uint8_t> peek_bytes(const GuestMemory& memory, uint64_t gpa, uint64_t size) {
  std::vector<uint8_t> bytes(size);
  EXPECT_TRUE(memory.read(gpa, bytes).ok()) << "reading guest address " << gpa;
  return bytes;
}

inline std::string peek_string(const GuestMemory& memory, uint64_t gpa) {
  std::string text;
  for (uint64_t a = gpa;; ++a) {
    auto c = peek<char>(memory, a);
    if (c == '\0' || text.size() > 0x10000) {
      return text;
    }
    text.push_back(c);
  }
}

template <typename T>
void patch(std::vector<uint8_t>& bytes, uint64_t offset, T value) {
  if (bytes.size() < offset + sizeof(T)) {
    bytes.resize(offset + sizeof(T));
  }
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

inline void patch_bytes(std::vector<uint8_t>& bytes, uint64_t offset,
                        const std::vector<uint8_t>& data) {
  if (bytes.size() < offset + data.size()) {
    bytes.resize(offset + data.size());
  }
  std::memcpy(bytes.data() + offset, data.data(), data.size());
}

// Distinct, non-zero bytes so a misplaced copy shows.
inline std::vector<uint8_t> pattern(size_t size, uint8_t seed) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<uint8_t>(seed + i * 7 + 1) | 1;
  }
  return bytes;
}

// Succeeds when `result` failed with `status` and a message containing `needle`.
template <typename T>
::testing::AssertionResult fails_with(const Result<T>& result, ExitStatus status,
                                      std::string_view needle = "") {
  if (result.ok()) {
    return ::testing::AssertionFailure() << "succeeded, expected status " << to_int(status);
  }
  const Error& error = result.error();
  if (error.status != status) {
    return ::testing::AssertionFailure() << "status " << to_int(error.status) << ", expected "
                                         << to_int(status) << ": " << error.message;
  }
  if (error.message.find(needle) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "message '" << error.message << "' does not mention '" << needle << "'";
  }
  return ::testing::AssertionSuccess() << error.message;
}

// ---- ELF ----

struct TestSegment {
  uint64_t address;  // p_paddr
  std::vector<uint8_t> data;
  uint64_t memory_size;                   // p_memsz; at least data.size() for a valid file
  uint64_t virtual_address = UINT64_MAX;  // UINT64_MAX: same as address
  uint32_t flags = PF_R | PF_W | PF_X;
  uint32_t type = PT_LOAD;
};

// Where build_elf put things, for tests that corrupt them.
constexpr uint64_t kElfPhdrOffset = 0x40;  // right after the (64-bit or padded 32-bit) header
constexpr uint64_t kElfDataOffset = 0x200;

inline uint64_t elf_data_offset(const std::vector<TestSegment>& segments, size_t index) {
  uint64_t offset = kElfDataOffset;
  for (size_t i = 0; i < index; ++i) {
    offset += (segments[i].data.size() + 15) & ~uint64_t{15};
  }
  return offset;
}

inline std::vector<uint8_t> build_elf(bool is_64bit, uint64_t entry,
                                      const std::vector<TestSegment>& segments) {
  std::vector<uint8_t> image(kElfDataOffset, 0);
  const size_t phdr_size = is_64bit ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
  if (kElfPhdrOffset + segments.size() * phdr_size > kElfDataOffset) {
    ADD_FAILURE() << "too many test segments";
  }
  unsigned char ident[EI_NIDENT] = {ELFMAG0,
                                    ELFMAG1,
                                    ELFMAG2,
                                    ELFMAG3,
                                    static_cast<unsigned char>(is_64bit ? ELFCLASS64 : ELFCLASS32),
                                    ELFDATA2LSB,
                                    EV_CURRENT};
  if (is_64bit) {
    Elf64_Ehdr h{};
    std::memcpy(h.e_ident, ident, EI_NIDENT);
    h.e_type = ET_EXEC;
    h.e_machine = EM_X86_64;
    h.e_version = EV_CURRENT;
    h.e_entry = entry;
    h.e_phoff = kElfPhdrOffset;
    h.e_ehsize = sizeof(h);
    h.e_phentsize = sizeof(Elf64_Phdr);
    h.e_phnum = static_cast<uint16_t>(segments.size());
    patch(image, 0, h);
  } else {
    Elf32_Ehdr h{};
    std::memcpy(h.e_ident, ident, EI_NIDENT);
    h.e_type = ET_EXEC;
    h.e_machine = EM_386;
    h.e_version = EV_CURRENT;
    h.e_entry = static_cast<uint32_t>(entry);
    h.e_phoff = kElfPhdrOffset;
    h.e_ehsize = sizeof(h);
    h.e_phentsize = sizeof(Elf32_Phdr);
    h.e_phnum = static_cast<uint16_t>(segments.size());
    patch(image, 0, h);
  }
  for (size_t i = 0; i < segments.size(); ++i) {
    const TestSegment& s = segments[i];
    const uint64_t offset = elf_data_offset(segments, i);
    const uint64_t vaddr = s.virtual_address == UINT64_MAX ? s.address : s.virtual_address;
    if (is_64bit) {
      Elf64_Phdr p{s.type, s.flags, offset, vaddr, s.address, s.data.size(), s.memory_size, 16};
      patch(image, kElfPhdrOffset + i * sizeof(p), p);
    } else {
      Elf32_Phdr p{s.type,
                   static_cast<uint32_t>(offset),
                   static_cast<uint32_t>(vaddr),
                   static_cast<uint32_t>(s.address),
                   static_cast<uint32_t>(s.data.size()),
                   static_cast<uint32_t>(s.memory_size),
                   s.flags,
                   16};
      patch(image, kElfPhdrOffset + i * sizeof(p), p);
    }
    patch_bytes(image, offset, s.data);
    image.resize((image.size() + 15) & ~size_t{15}, 0);
  }
  return image;
}

// ---- Multiboot ----

constexpr uint32_t kTestMultibootMagic = 0x1BADB002;

struct MultibootFields {
  uint32_t header_addr = 0;
  uint32_t load_addr = 0;
  uint32_t load_end_addr = 0;
  uint32_t bss_end_addr = 0;
  uint32_t entry_addr = 0;
};

// A 32-byte header; the address fields are zero unless given.
inline std::vector<uint8_t> multiboot_header(uint32_t flags, const MultibootFields& fields = {}) {
  std::vector<uint8_t> header;
  patch<uint32_t>(header, 0, kTestMultibootMagic);
  patch<uint32_t>(header, 4, flags);
  patch<uint32_t>(header, 8, static_cast<uint32_t>(0u - kTestMultibootMagic - flags));
  patch<uint32_t>(header, 12, fields.header_addr);
  patch<uint32_t>(header, 16, fields.load_addr);
  patch<uint32_t>(header, 20, fields.load_end_addr);
  patch<uint32_t>(header, 24, fields.bss_end_addr);
  patch<uint32_t>(header, 28, fields.entry_addr);
  return header;
}

// ---- Linux bzImage ----

struct BzImageSpec {
  uint16_t version = 0x020f;
  uint8_t setup_sects = 4;
  uint8_t loadflags = 0x01;      // LOADED_HIGH
  uint16_t xloadflags = 0x01;    // XLF_KERNEL_64
  uint8_t header_length = 0x6a;  // jump offset at 0x201: header ends at 0x26c
  uint32_t init_size = 0x40000;
  uint64_t pref_address = 0;
  uint32_t cmdline_size = 2047;
  uint32_t initrd_addr_max = 0x7fffffff;
  std::vector<uint8_t> payload = pattern(0x3000, 0x40);
};

constexpr uint16_t kTestRootDev = 0x0801;        // marker in the setup header (root_dev, 0x1fc)
constexpr uint64_t kBeyondHeaderMarker = 0x280;  // setup byte after the header: not copied

inline std::vector<uint8_t> build_bzimage(const BzImageSpec& spec) {
  const uint64_t setup_size = ((spec.setup_sects == 0 ? 4u : spec.setup_sects) + 1u) * 512u;
  std::vector<uint8_t> image(setup_size, 0);
  image[0x1f1] = spec.setup_sects;
  patch<uint32_t>(image, 0x1f4, static_cast<uint32_t>(spec.payload.size() / 16));  // syssize
  patch<uint16_t>(image, 0x1fa, 0xfffd);  // vid_mode "ask": hv must replace it
  patch<uint16_t>(image, 0x1fc, kTestRootDev);
  patch<uint16_t>(image, 0x1fe, 0xaa55);
  image[0x200] = 0xeb;
  image[0x201] = spec.header_length;
  std::memcpy(image.data() + 0x202, "HdrS", 4);
  patch<uint16_t>(image, 0x206, spec.version);
  image[0x211] = spec.loadflags;
  patch<uint32_t>(image, 0x214, 0x100000);  // code32_start
  patch<uint32_t>(image, 0x22c, spec.initrd_addr_max);
  patch<uint32_t>(image, 0x230, 0x200000);  // kernel_alignment
  image[0x234] = 1;                         // relocatable_kernel
  patch<uint16_t>(image, 0x236, spec.xloadflags);
  patch<uint32_t>(image, 0x238, spec.cmdline_size);
  patch<uint64_t>(image, 0x258, spec.pref_address);
  patch<uint32_t>(image, 0x260, spec.init_size);
  image[kBeyondHeaderMarker] = 0x5a;
  image.insert(image.end(), spec.payload.begin(), spec.payload.end());
  return image;
}

inline BootConfig config_for(std::vector<uint8_t> kernel, std::string path = "/images/kernel") {
  BootConfig config;
  config.kernel_path = std::move(path);
  config.kernel = std::move(kernel);
  return config;
}

}  // namespace hv::boot::testing
