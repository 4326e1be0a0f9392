// Decoded code, cached per guest-physical address: a block is a run of instructions decoded once
// and executed many times. A block stays valid while the version of every page it was decoded
// from is unchanged (CodePages); a guest write to such a page makes it stale.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "emu/cpu.hpp"
#include "emu/decoder.hpp"

namespace hv::emu {

struct Block {
  uint64_t key = 0;
  uint64_t pages[2] = {~0ull, ~0ull};  // guest-physical page numbers the bytes came from
  uint32_t versions[2] = {0, 0};
  std::vector<Insn> insns;
  uint32_t instruction_count = 0;  // guest instructions (a fused Insn stands for two)
  uint64_t rip_mask = ~0ull;       // IP/EIP/RIP wrap of the code size the block was decoded for
  // The block ends in a near branch or simply stops (length or page limit): what follows may
  // run without a trip through the event checks, unless an event is pending.
  bool continues = false;
  // Direct links to the blocks that followed this one (taken branch and fall-through), so the
  // run loop skips the lookup; each is followed only if its start address and the CPU's
  // translation epoch still match, and the target is still valid (known without looking at
  // its pages while no code page has been written since `checked_at`).
  struct Link {
    Block* target = nullptr;
    uint64_t linear = ~0ull;
    uint64_t epoch = ~0ull;
    uint64_t checked_at = ~0ull;  // CodePages::invalidations() when the target was last valid
  };
  Link links[2];
};

class BlockCache {
 public:
  static constexpr size_t kMaxInstructions = 64;

  explicit BlockCache(CodePages& pages) : pages_(pages) {}

  // The block starting at the CPU's current RIP, decoded now if needed. May raise #PF/#GP
  // (instruction fetch) as GuestFault.
  Block& lookup(Cpu& cpu) {
    const uint64_t linear = cpu.seg[kCs].base + cpu.rip;
    const uint64_t physical =
        cpu.code_physical_address(cpu.code_size() == 8 ? linear : (linear & 0xffffffff));
    // The code size is part of the key: the same bytes decode differently in 16/32/64-bit code.
    const uint64_t key = physical | (static_cast<uint64_t>(cpu.code_size()) << 56);
    Block* block = recent_[recent_index(physical)];
    if (block != nullptr && block->key == key && valid(*block)) [[likely]] {
      return *block;
    }
    return lookup_slow(cpu, linear, physical, key);
  }
  uint64_t blocks_decoded() const { return blocks_decoded_; }
  uint64_t invalidations() const { return pages_.invalidations(); }
  void clear();

 public:
  bool valid(const Block& block) const {
    return pages_.version(block.pages[0]) == block.versions[0] &&
           (block.pages[1] == ~0ull || pages_.version(block.pages[1]) == block.versions[1]);
  }
  Block& lookup_slow(Cpu& cpu, uint64_t linear, uint64_t physical, uint64_t key);

 private:
  std::unique_ptr<Block> decode(Cpu& cpu, uint64_t linear, uint64_t physical, uint64_t key);
  const Decoder& decoder_for(uint8_t code_size) const {
    return code_size == 8 ? decoder64_ : code_size == 4 ? decoder32_ : decoder16_;
  }

  CodePages& pages_;
  Decoder decoder16_{2}, decoder32_{4}, decoder64_{8};
  // Direct-mapped front of the map below, large enough for the working set of a Linux kernel's
  // boot (some 80,000 blocks in all, a few thousand hot at a time).
  static constexpr unsigned kRecentBits = 15;
  static size_t recent_index(uint64_t physical) {
    return (physical * 0x9e3779b97f4a7c15ull) >> (64 - kRecentBits);  // Fibonacci hashing
  }
  std::array<Block*, size_t{1} << kRecentBits> recent_{};
  std::unordered_map<uint64_t, std::unique_ptr<Block>> blocks_;
  uint64_t blocks_decoded_ = 0;
};

}  // namespace hv::emu
