// An ATA hard disk on the PC's primary IDE channel (command block 0x1f0..0x1f7, control block
// 0x3f6, ISA IRQ 14), modelled at the register level so that Linux's pata_legacy and the libata
// PIO code (ata_generic and friends), old BIOS-style drivers and hobby kernels drive it unchanged.
// The channel has one drive, the master; the slave position is empty. Storage is a BlockImage.
//
// What the guest sees: an ATA-8 disk with 28- and 48-bit LBA and CHS addressing (16 heads, 63
// sectors per track), PIO transfers only (no DMA, no bus mastering), READ/WRITE MULTIPLE with
// blocks of up to 16 sectors, a volatile write cache flushed by FLUSH CACHE (EXT), and the
// LBA48 "HOB" register pairs.
//
// Departures from a drive, invisible to a correct driver:
//  - Commands complete instantly: BSY is never seen except while SRST is held. A read has its
//    next DRQ block ready, and a write has its block on the image, before the port access that
//    asked returns. The image I/O runs on the vCPU thread under the device lock.
//  - With the write cache disabled (SET FEATURES 0x82) every write command ends with a flush.
//  - INTRQ follows the channel, not the selected drive: reading the status register acknowledges
//    the interrupt whichever drive is selected (as in QEMU).
//  - The ISA edge-triggered line is modelled as a level: raised while an interrupt is pending and
//    nIEN is clear, lowered when it is acknowledged (status read, new command, reset).
//  - A command written while DRQ or BSY is set (a protocol violation) cancels the transfer in
//    progress and runs; the spec leaves this undefined.
//  - A read or write that reaches past the end of the image fails before any transfer, with
//    IDNF|ABRT and the address registers pointing at the first missing sector.
//  - READ VERIFY only checks that the sectors exist.
//  - A host I/O error ends the command with ERR and UNC, for writes and flushes too (UNC is
//    defined for reads only); the error is the guest's to report, the host logs nothing.
//  - READ/WRITE MULTIPLE start enabled with 16-sector blocks (as in QEMU), so that Linux uses
//    them without a SET MULTIPLE MODE; SET MULTIPLE MODE 0 disables them (ATA-6 and later).
//  - EXECUTE DEVICE DIAGNOSTIC runs whichever drive is selected (as the spec says); every other
//    command written with the empty slave selected is ignored, which is how Linux's probe finds
//    it absent. The slave's status reads 0; the other registers are shared and read back.
//  - Data port accesses of any width move that many bytes of the transfer (8-bit, 16-bit and
//    32-bit PIO all work); outside a transfer reads return all ones and writes vanish.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "devices/block_image.hpp"
#include "vm/io_bus.hpp"
#include "vm/io_device.hpp"
#include "vm/machine.hpp"

namespace hv {

class AtaDisk {
 public:
  static constexpr uint64_t kCommandBlockBase = 0x1f0;
  static constexpr uint64_t kCommandBlockLength = 8;
  static constexpr uint64_t kControlPort = 0x3f6;
  static constexpr uint64_t kControlBlockLength = 1;
  static constexpr uint32_t kIrq = 14;

  static constexpr uint32_t kSectorSize = 512;
  static constexpr uint32_t kMaxMultipleSectors = 16;  // IDENTIFY word 47, the buffer's size
  static constexpr uint32_t kDefaultHeads = 16;
  static constexpr uint32_t kDefaultSectorsPerTrack = 63;

  // `image` must outlive the disk. A read-only image makes write commands fail with ABRT.
  AtaDisk(IrqLine irq, BlockImage* image);
  AtaDisk(const AtaDisk&) = delete;
  AtaDisk& operator=(const AtaDisk&) = delete;

  // Registers the command block at kCommandBlockBase and the control block at kControlPort. To
  // put the disk elsewhere (a secondary channel at 0x170/0x376), add command_block() and
  // control_block() to the bus directly.
  Status register_on(IoBus& pio);
  IoDevice* command_block() { return &command_block_; }
  IoDevice* control_block() { return &control_block_; }

 private:
  // The two address ranges of the channel, each forwarding to the disk.
  class CommandBlock final : public IoDevice {
   public:
    explicit CommandBlock(AtaDisk& disk) : disk_(disk) {}
    std::string_view name() const override { return "ata-command-block"; }
    // Offset 0 is the data register, whatever the width; wider accesses elsewhere touch
    // consecutive registers.
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

   private:
    AtaDisk& disk_;
  };
  class ControlBlock final : public IoDevice {
   public:
    explicit ControlBlock(AtaDisk& disk) : disk_(disk) {}
    std::string_view name() const override { return "ata-control-block"; }
    // Read: alternate status (no interrupt acknowledge). Write: device control.
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

   private:
    AtaDisk& disk_;
  };

  // A register that remembers the value written before the last one: the LBA48 "high order
  // byte", read back with the device control HOB bit set.
  struct PairedRegister {
    uint8_t current = 0;
    uint8_t previous = 0;
    void push(uint8_t value) {
      previous = current;
      current = value;
    }
    void set(uint8_t value) {
      current = value;
      previous = value;
    }
    uint8_t read(bool high_order) const { return high_order ? previous : current; }
  };

  enum class Transfer { None, DataIn, DataOut };
  enum class Addressing { Chs, Lba28, Lba48 };

  // Where a read or write command goes; validated against the image before any transfer.
  struct Request {
    uint64_t lba = 0;
    uint32_t sectors = 0;
  };

  uint8_t read_data_byte();
  void write_data_byte(uint8_t value);
  uint8_t read_register(uint64_t index);
  void write_register(uint64_t index, uint8_t value);
  void write_device_control(uint8_t value);
  uint8_t visible_status() const;

  void execute(uint8_t command);
  void identify();
  void start_read(Addressing addressing, uint32_t block_sectors);
  void start_write(Addressing addressing, uint32_t block_sectors);
  void verify(Addressing addressing);
  void set_multiple_mode();
  void set_features();
  void initialize_device_parameters();
  void flush_cache();
  void load_read_block();
  void start_write_block();
  void commit_write_block();

  // Decodes the address and count registers; fails (having completed the command with an error)
  // when the sectors are not all on the image or the CHS address is malformed.
  bool decode_request(Addressing addressing, Request* request);
  void set_address_registers(uint64_t lba);
  bool is_selected_drive_present() const;
  void set_signature();
  void reset();

  void complete();
  void abort_command();
  // Ends the command with ERR and `error`; fail() also points the address registers at `lba`.
  void fail(uint8_t error, uint64_t lba);
  void fail_without_address(uint8_t error);
  void raise_interrupt();
  void acknowledge_interrupt();
  void update_irq();

  const IrqLine irq_;
  BlockImage* const image_;
  const std::string serial_;  // IDENTIFY's serial number
  CommandBlock command_block_{*this};
  ControlBlock control_block_{*this};

  std::mutex mutex_;  // guards everything below
  PairedRegister features_;
  PairedRegister sector_count_;
  PairedRegister lba_low_;
  PairedRegister lba_mid_;
  PairedRegister lba_high_;
  uint8_t device_ = 0;
  uint8_t error_ = 0;
  uint8_t status_ = 0;
  uint8_t device_control_ = 0;
  bool interrupt_pending_ = false;
  bool irq_level_ = false;

  uint32_t multiple_sectors_ = kMaxMultipleSectors;  // 0: READ/WRITE MULTIPLE disabled
  bool write_cache_enabled_ = true;
  uint32_t heads_ = kDefaultHeads;  // the current CHS translation (INITIALIZE DEVICE PARAMETERS)
  uint32_t sectors_per_track_ = kDefaultSectorsPerTrack;

  // The PIO transfer in progress. buffer_ holds one DRQ block; for a media transfer, next_lba_
  // and sectors_left_ describe what comes after the block in the buffer (reads) or the block in
  // the buffer and what follows it (writes).
  Transfer transfer_ = Transfer::None;
  Addressing addressing_ = Addressing::Lba28;
  std::array<uint8_t, kMaxMultipleSectors * kSectorSize> buffer_{};
  size_t buffer_position_ = 0;
  size_t buffer_length_ = 0;
  uint64_t next_lba_ = 0;
  uint32_t sectors_left_ = 0;
  uint32_t block_sectors_ = 1;
};

}  // namespace hv
