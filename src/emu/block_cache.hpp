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
};

class BlockCache {
 public:
  static constexpr size_t kMaxInstructions = 64;

  explicit BlockCache(CodePages& pages) : pages_(pages) {}

  // The block starting at the CPU's current RIP, decoded now if needed. May raise #PF/#GP
  // (instruction fetch) as GuestFault.
  const Block& lookup(Cpu& cpu);
  uint64_t blocks_decoded() const { return blocks_decoded_; }
  void clear();

 private:
  bool valid(const Block& block) const;
  std::unique_ptr<Block> decode(Cpu& cpu, uint64_t linear, uint64_t physical, uint64_t key);
  const Decoder& decoder_for(uint8_t code_size) const {
    return code_size == 8 ? decoder64_ : code_size == 4 ? decoder32_ : decoder16_;
  }

  CodePages& pages_;
  Decoder decoder16_{2}, decoder32_{4}, decoder64_{8};
  std::array<Block*, 4096> recent_{};  // direct-mapped front of the map below
  std::unordered_map<uint64_t, std::unique_ptr<Block>> blocks_;
  uint64_t blocks_decoded_ = 0;
};

}  // namespace hv::emu
