// A 16550A UART (the PC's COM1 at 0x3f8..0x3ff, IRQ 4), modelled at the register level so that
// Linux's 8250 driver, firmware-less hobby kernels and polling boot code all drive it unchanged.
//
// Departures from the chip, all invisible to a correct driver:
//  - Transmission is instantaneous: a byte written to THR reaches the CharSink before the write
//    returns, so THR and the transmitter are always empty (LSR THRE|TEMT always set).
//  - The receive FIFO holds kReceiveCapacity bytes instead of 16, so pasted console input is not
//    lost; the 16-byte trigger levels still decide whether IIR reports "data available" or
//    "character timeout". receive() never drops bytes: it takes what fits and the console keeps
//    the rest (back-pressure). Overrun (LSR OE) can only happen in loopback mode, where the
//    transmitter has nobody to push back on.
//  - The modem inputs are wired as if a null-modem cable were plugged in: CTS, DSR and DCD on,
//    RI off. In loopback mode they follow the MCR outputs as on the chip.
//  - OUT2 does not gate the interrupt output (the PC wiring does; QEMU does not either, and
//    guests that forget OUT2 keep working).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>

#include "devices/char_sink.hpp"
#include "vm/io_device.hpp"
#include "vm/machine.hpp"

namespace hv {

class Serial16550 final : public IoDevice {
 public:
  static constexpr uint64_t kRegisterCount = 8;  // the bus range length
  static constexpr size_t kReceiveCapacity = 4096;
  static constexpr size_t kHardwareFifoSize = 16;

  // `output` may be null (transmitted bytes are then discarded); it must outlive the device.
  Serial16550(IrqLine irq, CharSink* output);

  std::string_view name() const override { return "serial-16550"; }
  // Accesses wider than a byte touch consecutive registers, as the ISA bus splits them.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Console input (any thread). Returns how many leading bytes were taken; the caller offers the
  // rest again later. Takes nothing in loopback mode, where the line input is disconnected.
  size_t receive(std::span<const uint8_t> bytes);

 private:
  uint8_t read_register(uint64_t index);
  // Returns whether `value` went to THR and must be handed to the sink.
  bool write_register(uint64_t index, uint8_t value);
  void write_fcr(uint8_t value);
  void write_mcr(uint8_t value);
  void loop_back(uint8_t value);
  void clear_receive_fifo();
  uint8_t line_status() const;
  uint8_t modem_status_lines() const;
  uint8_t identify_interrupt() const;
  void update_irq();

  const IrqLine irq_;
  CharSink* const output_;

  std::mutex mutex_;  // guards everything below
  std::array<uint8_t, kReceiveCapacity> receive_fifo_{};
  size_t receive_head_ = 0;
  size_t receive_count_ = 0;
  uint8_t last_received_ = 0;  // RBR keeps its last byte once the FIFO is empty
  uint8_t ier_ = 0;
  uint8_t fcr_ = 0;  // enable, DMA mode and trigger bits; the clear bits self-clear
  uint8_t lcr_ = 0;
  uint8_t mcr_ = 0;
  uint8_t line_errors_ = 0;   // LSR OE/PE/FE/BI, cleared by reading LSR
  uint8_t modem_deltas_ = 0;  // MSR bits 3:0, cleared by reading MSR
  uint8_t scratch_ = 0;
  uint8_t divisor_low_ = 0x0c;  // 9600 baud, what a BIOS would have left
  uint8_t divisor_high_ = 0;
  bool thre_pending_ = false;
  bool irq_level_ = false;

  std::mutex output_mutex_;  // serialises sink writes without holding mutex_ (see write())
};

}  // namespace hv
