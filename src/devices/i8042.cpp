#include "devices/i8042.hpp"

#include <algorithm>

namespace hv {
namespace {

constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusLastWriteWasCommand = 0x08;
constexpr uint8_t kStatusNotInhibited = 0x10;  // the keylock is open
constexpr uint8_t kStatusAuxData = 0x20;
constexpr uint8_t kStatusTimeout = 0x40;

constexpr uint8_t kCtrKeyboardInterrupt = 0x01;
constexpr uint8_t kCtrAuxInterrupt = 0x02;
constexpr uint8_t kCtrSystemFlag = 0x04;
constexpr uint8_t kCtrKeyboardDisabled = 0x10;
constexpr uint8_t kCtrAuxDisabled = 0x20;
constexpr uint8_t kCtrTranslate = 0x40;
// What a BIOS leaves behind: POST passed, keyboard interrupt on, translation on, mouse off.
constexpr uint8_t kCtrDefault =
    kCtrTranslate | kCtrAuxDisabled | kCtrSystemFlag | kCtrKeyboardInterrupt;

constexpr uint8_t kOutputPortResetDeasserted = 0x01;
constexpr uint8_t kOutputPortA20 = 0x02;  // A20 is always enabled; the gate is not modelled

constexpr uint8_t kCmdReadRamFirst = 0x20;
constexpr uint8_t kCmdReadRamLast = 0x3f;
constexpr uint8_t kCmdWriteRamFirst = 0x60;
constexpr uint8_t kCmdWriteRamLast = 0x7f;
constexpr uint8_t kCmdDisableAux = 0xa7;
constexpr uint8_t kCmdEnableAux = 0xa8;
constexpr uint8_t kCmdTestAux = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdTestKeyboard = 0xab;
constexpr uint8_t kCmdDisableKeyboard = 0xad;
constexpr uint8_t kCmdEnableKeyboard = 0xae;
constexpr uint8_t kCmdReadInputPort = 0xc0;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdWriteKeyboardOutput = 0xd2;
constexpr uint8_t kCmdWriteAuxOutput = 0xd3;
constexpr uint8_t kCmdWriteAux = 0xd4;
constexpr uint8_t kCmdReadTestInputs = 0xe0;
constexpr uint8_t kCmdPulseOutputFirst = 0xf0;  // 0xf0..0xff pulse the lines whose bit is 0

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kInterfaceTestPassed = 0x00;
constexpr uint8_t kInputPortKeyboardNotInhibited = 0x80;

constexpr uint8_t kKbdSetLeds = 0xed;
constexpr uint8_t kKbdEcho = 0xee;
constexpr uint8_t kKbdScanCodeSet = 0xf0;
constexpr uint8_t kKbdIdentify = 0xf2;
constexpr uint8_t kKbdSetTypematic = 0xf3;
constexpr uint8_t kKbdEnable = 0xf4;
constexpr uint8_t kKbdDisable = 0xf5;
constexpr uint8_t kKbdSetDefaults = 0xf6;
constexpr uint8_t kKbdScanSet3First = 0xf7;  // 0xf7..0xfd: per-key modes of scan code set 3
constexpr uint8_t kKbdScanSet3Last = 0xfd;
constexpr uint8_t kKbdResend = 0xfe;
constexpr uint8_t kKbdReset = 0xff;

constexpr uint8_t kKbdAck = 0xfa;
constexpr uint8_t kKbdSelfTestPassed = 0xaa;
constexpr uint8_t kKbdResendRequest = 0xfe;
constexpr uint8_t kKbdIdFirst = 0xab;  // MF2 keyboard
constexpr uint8_t kKbdIdSecond = 0x83;
constexpr uint8_t kAuxNoDevice = 0xfe;

// A keyboard buffers 16 bytes; the bound also keeps a guest spamming commands from growing
// the queues without limit.
constexpr size_t kQueueLimit = 16;

}  // namespace

I8042::I8042(IrqLine keyboard_irq, IrqLine aux_irq, StopControl& stop)
    : keyboard_irq_(keyboard_irq),
      aux_irq_(aux_irq),
      stop_(stop),
      output_port_(kOutputPortResetDeasserted | kOutputPortA20) {
  command_byte() = kCtrDefault;
}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) {
    return;
  }
  std::fill(data.begin(), data.end(), 0xff);
  std::lock_guard lock(mutex_);
  if (offset == kDataOffset) {
    data[0] = read_data();
  } else if (offset == kCommandOffset) {
    data[0] = status();
  }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) {
    return;
  }
  bool reset = false;
  {
    std::lock_guard lock(mutex_);
    if (offset == kDataOffset) {
      reset = write_data(data[0]);
    } else if (offset == kCommandOffset) {
      reset = write_command(data[0]);
    }
  }
  // Outside the lock: stopping kicks every vCPU, which need not wait for this device.
  if (reset) {
    stop_.request(StopReason{StopKind::Reset, 0,
                             "guest reset the machine through the keyboard controller", ""});
  }
}

uint8_t I8042::status() const {
  uint8_t value = kStatusNotInhibited;
  if (output_full_) {
    value |= kStatusOutputFull;
    if (output_buffer_.aux) {
      value |= kStatusAuxData;
    }
    if (output_buffer_.timeout) {
      value |= kStatusTimeout;
    }
  }
  if ((command_byte() & kCtrSystemFlag) != 0) {
    value |= kStatusSystemFlag;
  }
  if (last_write_was_command_) {
    value |= kStatusLastWriteWasCommand;
  }
  return value;
}

uint8_t I8042::read_data() {
  const uint8_t value = output_buffer_.value;
  if (output_full_) {
    output_full_ = false;
    update_irqs();  // lower the line first, so the next byte is a fresh edge
    fill_output_buffer();
  }
  return value;
}

bool I8042::write_command(uint8_t command) {
  last_write_was_command_ = true;
  pending_command_ = 0;  // a command abandons a parameter that never came
  if (command >= kCmdReadRamFirst && command <= kCmdReadRamLast) {
    respond({controller_ram_[command - kCmdReadRamFirst]});
    return false;
  }
  if (command >= kCmdWriteRamFirst && command <= kCmdWriteRamLast) {
    pending_command_ = command;
    return false;
  }
  if (command >= kCmdPulseOutputFirst) {
    return (command & kOutputPortResetDeasserted) == 0;
  }
  switch (command) {
    case kCmdDisableAux:
      command_byte() |= kCtrAuxDisabled;
      break;
    case kCmdEnableAux:
      command_byte() &= static_cast<uint8_t>(~kCtrAuxDisabled);
      break;
    case kCmdTestAux:
    case kCmdTestKeyboard:
      respond({kInterfaceTestPassed});
      break;
    case kCmdSelfTest:
      command_byte() |= kCtrSystemFlag;
      respond({kSelfTestPassed});
      break;
    case kCmdDisableKeyboard:
      command_byte() |= kCtrKeyboardDisabled;
      break;
    case kCmdEnableKeyboard:
      command_byte() &= static_cast<uint8_t>(~kCtrKeyboardDisabled);
      fill_output_buffer();
      break;
    case kCmdReadInputPort:
      respond({kInputPortKeyboardNotInhibited});
      break;
    case kCmdReadOutputPort:
      respond({output_port_});
      break;
    case kCmdReadTestInputs:
      respond({0});
      break;
    case kCmdWriteOutputPort:
    case kCmdWriteKeyboardOutput:
    case kCmdWriteAuxOutput:
    case kCmdWriteAux:
      pending_command_ = command;
      break;
    default:
      break;  // unknown commands are ignored, as most controllers do
  }
  return false;
}

bool I8042::write_data(uint8_t value) {
  last_write_was_command_ = false;
  const uint8_t command = pending_command_;
  pending_command_ = 0;
  if (command >= kCmdWriteRamFirst && command <= kCmdWriteRamLast) {
    controller_ram_[command - kCmdWriteRamFirst] = value;
    // The command byte may have enabled the keyboard port or changed interrupt enables.
    fill_output_buffer();
    update_irqs();
    return false;
  }
  switch (command) {
    case kCmdWriteOutputPort:
      output_port_ = value | kOutputPortA20;
      return (value & kOutputPortResetDeasserted) == 0;
    case kCmdWriteKeyboardOutput:
      respond({value});
      return false;
    case kCmdWriteAuxOutput:
      respond({value, true});
      return false;
    case kCmdWriteAux:
      command_byte() &= static_cast<uint8_t>(~kCtrAuxDisabled);  // sending enables the port
      respond({kAuxNoDevice, true, true});
      return false;
    default:
      break;
  }
  // Plain data goes to the keyboard, and sending it re-enables the keyboard port.
  command_byte() &= static_cast<uint8_t>(~kCtrKeyboardDisabled);
  keyboard_command(value);
  fill_output_buffer();
  return false;
}

void I8042::keyboard_command(uint8_t value) {
  if (keyboard_pending_command_ != 0) {
    const uint8_t command = keyboard_pending_command_;
    keyboard_pending_command_ = 0;
    if (command == kKbdScanCodeSet) {
      if (value == 0) {
        keyboard_send(kKbdAck);
        keyboard_send(keyboard_scan_code_set_);
        return;
      }
      if (value > 3) {
        keyboard_send(kKbdResendRequest);
        return;
      }
      keyboard_scan_code_set_ = value;
    }
    keyboard_send(kKbdAck);  // LED states and typematic rates have nothing to drive
    return;
  }
  switch (value) {
    case kKbdSetLeds:
    case kKbdSetTypematic:
    case kKbdScanCodeSet:
      keyboard_pending_command_ = value;
      keyboard_send(kKbdAck);
      break;
    case kKbdEcho:
      keyboard_send(kKbdEcho);
      break;
    case kKbdIdentify:
      keyboard_send(kKbdAck);
      keyboard_send(kKbdIdFirst);
      keyboard_send(kKbdIdSecond);
      break;
    case kKbdEnable:
    case kKbdDisable:
      // Scanning on or off makes no difference to a keyboard that never sends scan codes.
      keyboard_send(kKbdAck);
      break;
    case kKbdSetDefaults:
      keyboard_scan_code_set_ = 2;
      keyboard_send(kKbdAck);
      break;
    case kKbdResend:
      keyboard_send(keyboard_last_sent_);
      break;
    case kKbdReset:
      reset_keyboard();
      keyboard_send(kKbdAck);
      keyboard_send(kKbdSelfTestPassed);
      break;
    default:
      if (value >= kKbdScanSet3First && value <= kKbdScanSet3Last) {
        keyboard_send(kKbdAck);
      } else {
        keyboard_send(kKbdResendRequest);
      }
      break;
  }
}

void I8042::reset_keyboard() {
  keyboard_output_.clear();
  keyboard_pending_command_ = 0;
  keyboard_scan_code_set_ = 2;
}

void I8042::keyboard_send(uint8_t value) {
  keyboard_last_sent_ = value;
  if (keyboard_output_.size() < kQueueLimit) {
    keyboard_output_.push_back(value);
  }
}

void I8042::respond(OutputByte byte) {
  if (controller_output_.size() < kQueueLimit) {
    controller_output_.push_back(byte);
  }
  fill_output_buffer();
}

void I8042::fill_output_buffer() {
  if (!output_full_) {
    if (!controller_output_.empty()) {
      output_buffer_ = controller_output_.front();
      controller_output_.pop_front();
      output_full_ = true;
    } else if (!keyboard_output_.empty() && (command_byte() & kCtrKeyboardDisabled) == 0) {
      output_buffer_ = OutputByte{keyboard_output_.front()};
      keyboard_output_.pop_front();
      output_full_ = true;
    }
  }
  update_irqs();
}

void I8042::update_irqs() {
  const bool keyboard =
      output_full_ && !output_buffer_.aux && (command_byte() & kCtrKeyboardInterrupt) != 0;
  const bool aux = output_full_ && output_buffer_.aux && (command_byte() & kCtrAuxInterrupt) != 0;
  if (keyboard != keyboard_irq_level_) {
    keyboard_irq_level_ = keyboard;
    keyboard_irq_.set(keyboard);
  }
  if (aux != aux_irq_level_) {
    aux_irq_level_ = aux;
    aux_irq_.set(aux);
  }
}

}  // namespace hv
