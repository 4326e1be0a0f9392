// The PC's 8042 keyboard controller: data port 0x60, status/command port 0x64. Enough of the
// controller and of an attached MF2 keyboard for operating systems to probe them quickly and
// find them healthy, and the controller's reset line, which is how many guests reboot.
//
// No key is ever pressed (console input goes through the UART) and no mouse is attached: bytes
// sent to the auxiliary device come back as 0xfe with the timeout bit, as a real controller
// answers for an empty PS/2 port, so mouse probes fail at once instead of waiting for timeouts.
// Scan code translation is not modelled (the keyboard never sends scan codes).
//
// Output bytes raise IRQ 1 (keyboard) or IRQ 12 (auxiliary) while they wait in the output buffer
// and the command byte enables that interrupt. Reading one lowers the line before the next byte
// is loaded, so every byte is a new edge for the edge-triggered ISA inputs.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string_view>

#include "vm/io_device.hpp"
#include "vm/machine.hpp"
#include "vm/stop_control.hpp"

namespace hv {

class I8042 final : public IoDevice {
 public:
  // Offsets are port numbers minus 0x60. The two ports are separate bus ranges because 0x61 is
  // the PIT's speaker gate: the device is registered at 0x60 (length 1) and an IoWindow with
  // displacement kCommandOffset at 0x64 (length 1).
  static constexpr uint64_t kDataOffset = 0;
  static constexpr uint64_t kCommandOffset = 4;

  I8042(IrqLine keyboard_irq, IrqLine aux_irq, StopControl& stop);

  std::string_view name() const override { return "i8042"; }
  // Every register is one byte wide: only the first byte of an access reaches one, the others
  // read 0xff and are ignored (they belong to neighbouring ports).
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  struct OutputByte {
    uint8_t value = 0;
    bool aux = false;      // came from (or on behalf of) the auxiliary port
    bool timeout = false;  // the auxiliary device did not answer
  };

  uint8_t status() const;
  uint8_t read_data();
  // Both return whether the guest asked for a machine reset.
  bool write_command(uint8_t command);
  bool write_data(uint8_t value);
  void keyboard_command(uint8_t value);
  void respond(OutputByte byte);
  void keyboard_send(uint8_t value);
  void reset_keyboard();
  void fill_output_buffer();
  void update_irqs();
  uint8_t& command_byte() { return controller_ram_[0]; }
  uint8_t command_byte() const { return controller_ram_[0]; }

  const IrqLine keyboard_irq_;
  const IrqLine aux_irq_;
  StopControl& stop_;

  std::mutex mutex_;  // guards everything below
  // Controller RAM; byte 0 is the command byte (the "CTR").
  std::array<uint8_t, 32> controller_ram_{};
  uint8_t output_port_;
  uint8_t pending_command_ = 0;  // a controller command waiting for its parameter byte
  bool last_write_was_command_ = false;
  OutputByte output_buffer_;  // its value stays readable once consumed, as on the chip
  bool output_full_ = false;
  std::deque<OutputByte> controller_output_;  // command responses, queued ahead of devices
  std::deque<uint8_t> keyboard_output_;       // held back while the keyboard port is disabled
  uint8_t keyboard_pending_command_ = 0;      // a keyboard command waiting for its argument
  uint8_t keyboard_last_sent_ = 0;            // for the keyboard's resend command
  uint8_t keyboard_scan_code_set_ = 2;
  bool keyboard_irq_level_ = false;
  bool aux_irq_level_ = false;
};

}  // namespace hv
