#include "emu/block_cache.hpp"

#include "emu/branch_fusion.hpp"

namespace hv::emu {

namespace {

// Near JMP/Jcc/CALL/RET/LOOP/JCXZ: they change only RIP (and the stack), nothing that needs the
// between-blocks event checks.
bool is_near_branch(const Insn& insn) {
  if (insn.handler == invalid_opcode) {
    return false;
  }
  const uint16_t op = insn.opcode;
  if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f) || (op >= 0xe0 && op <= 0xe3)) {
    return true;
  }
  switch (op) {
    case 0xe8:  // CALL rel
    case 0xe9:  // JMP rel
    case 0xeb:
    case 0xc2:  // RET (near)
    case 0xc3:
      return true;
    case 0xff:
      return insn.modrm_reg == 2 || insn.modrm_reg == 4;  // CALL/JMP r/m (near)
    default:
      return false;
  }
}

}  // namespace

Block& BlockCache::lookup_slow(Cpu& cpu, uint64_t linear, uint64_t physical, uint64_t key) {
  Block*& slot = recent_[recent_index(physical)];
  auto it = blocks_.find(key);
  if (it == blocks_.end() || !valid(*it->second)) {
    std::unique_ptr<Block> block = decode(cpu, linear, physical, key);
    if (it == blocks_.end()) {
      it = blocks_.emplace(key, std::move(block)).first;
    } else {
      // The old block may still be referenced by recent_: replace its content in place.
      *it->second = std::move(*block);
    }
  }
  slot = it->second.get();
  return *slot;
}

std::unique_ptr<Block> BlockCache::decode(Cpu& cpu, uint64_t linear, uint64_t physical,
                                          uint64_t key) {
  auto block = std::make_unique<Block>();
  block->key = key;
  const uint8_t code_size = cpu.code_size();
  const Decoder& decoder = decoder_for(code_size);
  const uint64_t first_page = physical >> 12;
  block->pages[0] = first_page;
  // Snapshot the version before reading the bytes: a concurrent write then makes it stale.
  pages_.mark_code(first_page);
  block->versions[0] = pages_.version(first_page);
  uint64_t offset = 0;
  while (block->insns.size() < kMaxInstructions) {
    const uint64_t address = linear + offset;
    const uint64_t page_left = 0x1000 - (address & 0xfff);
    if (offset != 0 && page_left == 0x1000) {
      break;  // the block does not start a new page: the next block will
    }
    uint8_t bytes[15];
    uint32_t available = static_cast<uint32_t>(page_left < 15 ? page_left : 15);
    cpu.fetch(address, bytes, available);
    Insn insn;
    bool ok = decoder.decode(std::span<const uint8_t>(bytes, available), insn);
    if (!ok && available < 15) {
      // Perhaps the instruction continues on the next page: fetch across and retry.
      const uint64_t second = cpu.code_physical_address(address + available) >> 12;
      cpu.fetch(address + available, bytes + available, 15 - available);
      ok = decoder.decode(std::span<const uint8_t>(bytes, 15), insn);
      if (ok && insn.length > available) {
        block->pages[1] = second;
        pages_.mark_code(second);
        block->versions[1] = pages_.version(second);
      }
    }
    offset += insn.length;
    const bool stop = insn.ends_block || !ok || block->pages[1] != ~0ull;
    block->insns.push_back(insn);
    if (stop) {
      break;
    }
  }
  const Insn& last = block->insns.back();
  block->continues = !last.ends_block || is_near_branch(last);
  block->instruction_count = fuse_block_end(block->insns);
  block->rip_mask = code_size == 8 ? ~0ull : code_size == 4 ? 0xffffffffull : 0xffffull;
  ++blocks_decoded_;
  return block;
}

void BlockCache::clear() {
  recent_.fill(nullptr);
  blocks_.clear();
}

}  // namespace hv::emu
