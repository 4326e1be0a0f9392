#include "devices/serial_16550.hpp"

#include <algorithm>

namespace hv {
namespace {

// Register indexes (offsets from the base port).
constexpr uint64_t kRbrThrDll = 0;
constexpr uint64_t kIerDlm = 1;
constexpr uint64_t kIirFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kIerReceivedData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIerLineStatus = 0x04;
constexpr uint8_t kIerModemStatus = 0x08;
constexpr uint8_t kIerMask = 0x0f;  // a 16550A has only these; Linux's probe checks it

constexpr uint8_t kIirNoInterrupt = 0x01;
constexpr uint8_t kIirModemStatus = 0x00;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirReceivedData = 0x04;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirCharacterTimeout = 0x0c;
constexpr uint8_t kIirFifosEnabled = 0xc0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearReceive = 0x02;
constexpr uint8_t kFcrStoredBits = 0xc9;  // enable, DMA mode, receive trigger level

constexpr uint8_t kLcrDivisorLatch = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoopback = 0x10;
constexpr uint8_t kMcrMask = 0x1f;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrErrors = 0x1e;  // OE, PE, FE, BI: the receiver line status interrupt
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrTransmitterEmpty = 0x40;

constexpr uint8_t kMsrDeltaCts = 0x01;
constexpr uint8_t kMsrDeltaDsr = 0x02;
constexpr uint8_t kMsrTrailingEdgeRi = 0x04;
constexpr uint8_t kMsrDeltaDcd = 0x08;
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;
// What the guest sees with the console attached: the peer is ready and the carrier is up.
constexpr uint8_t kMsrConnected = kMsrCts | kMsrDsr | kMsrDcd;

// FCR bits 7:6 select how many bytes raise "received data available" in FIFO mode.
constexpr size_t kTriggerLevels[4] = {1, 4, 8, 14};

}  // namespace

Serial16550::Serial16550(IrqLine irq, CharSink* output) : irq_(irq), output_(output) {}

void Serial16550::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t index = offset + i;
    data[i] = index < kRegisterCount ? read_register(index) : 0xff;
  }
}

void Serial16550::write(uint64_t offset, std::span<const uint8_t> data) {
  // The sink may block (a stalled terminal); it is called without mutex_ so the console thread
  // can still deliver input and other vCPUs can still poll LSR meanwhile. A guest serialises its
  // own THR writes, and this access does not return before its bytes reach the sink, so output
  // order is the guest's order.
  std::array<uint8_t, 8> transmitted{};
  size_t transmitted_count = 0;
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
      const uint64_t index = offset + i;
      if (index < kRegisterCount && write_register(index, data[i]) &&
          transmitted_count < transmitted.size()) {
        transmitted[transmitted_count++] = data[i];
      }
    }
  }
  if (transmitted_count > 0 && output_ != nullptr) {
    std::lock_guard lock(output_mutex_);
    output_->write(std::span<const uint8_t>(transmitted.data(), transmitted_count));
  }
}

size_t Serial16550::receive(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  if ((mcr_ & kMcrLoopback) != 0) {
    return 0;
  }
  const size_t taken = std::min(bytes.size(), kReceiveCapacity - receive_count_);
  for (size_t i = 0; i < taken; ++i) {
    receive_fifo_[(receive_head_ + receive_count_) % kReceiveCapacity] = bytes[i];
    ++receive_count_;
  }
  if (taken > 0) {
    update_irq();
  }
  return taken;
}

uint8_t Serial16550::read_register(uint64_t index) {
  const bool divisor_latch = (lcr_ & kLcrDivisorLatch) != 0;
  switch (index) {
    case kRbrThrDll:
      if (divisor_latch) {
        return divisor_low_;
      }
      if (receive_count_ > 0) {
        last_received_ = receive_fifo_[receive_head_];
        receive_head_ = (receive_head_ + 1) % kReceiveCapacity;
        --receive_count_;
        update_irq();
      }
      return last_received_;
    case kIerDlm:
      return divisor_latch ? divisor_high_ : ier_;
    case kIirFcr: {
      const uint8_t id = identify_interrupt();
      // Reading IIR acknowledges a THR-empty interrupt, but only when it is the one reported.
      if (id == kIirThrEmpty) {
        thre_pending_ = false;
        update_irq();
      }
      return static_cast<uint8_t>(id | ((fcr_ & kFcrEnable) != 0 ? kIirFifosEnabled : 0));
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr: {
      const uint8_t status = line_status();
      if (line_errors_ != 0) {
        line_errors_ = 0;
        update_irq();
      }
      return status;
    }
    case kMsr: {
      const uint8_t status = static_cast<uint8_t>(modem_status_lines() | modem_deltas_);
      if (modem_deltas_ != 0) {
        modem_deltas_ = 0;
        update_irq();
      }
      return status;
    }
    case kScr:
      return scratch_;
    default:
      return 0xff;
  }
}

bool Serial16550::write_register(uint64_t index, uint8_t value) {
  const bool divisor_latch = (lcr_ & kLcrDivisorLatch) != 0;
  switch (index) {
    case kRbrThrDll:
      if (divisor_latch) {
        divisor_low_ = value;
        return false;
      }
      // THR empties at once, which is a new THR-empty event.
      thre_pending_ = true;
      if ((mcr_ & kMcrLoopback) != 0) {
        loop_back(value);
        update_irq();
        return false;
      }
      update_irq();
      return true;
    case kIerDlm:
      if (divisor_latch) {
        divisor_high_ = value;
        return false;
      }
      ier_ = value & kIerMask;
      // Enabling the THR-empty interrupt while THR is empty (always, here) raises it at once,
      // even if it was acknowledged before: Linux's start_tx and its THRE probe rely on this.
      thre_pending_ = (ier_ & kIerThrEmpty) != 0;
      update_irq();
      return false;
    case kIirFcr:
      write_fcr(value);
      return false;
    case kLcr:
      lcr_ = value;
      return false;
    case kMcr:
      write_mcr(value);
      return false;
    case kScr:
      scratch_ = value;
      return false;
    default:  // LSR and MSR are read-only (writes reach factory test logic on the chip)
      return false;
  }
}

void Serial16550::write_fcr(uint8_t value) {
  const bool was_enabled = (fcr_ & kFcrEnable) != 0;
  const bool enable = (value & kFcrEnable) != 0;
  // Switching the FIFOs on or off resets them; the clear bits only act with the enable bit set.
  if (enable != was_enabled || (enable && (value & kFcrClearReceive) != 0)) {
    clear_receive_fifo();
  }
  fcr_ = enable ? static_cast<uint8_t>(value & kFcrStoredBits) : 0;
  update_irq();
}

void Serial16550::write_mcr(uint8_t value) {
  const uint8_t old_lines = modem_status_lines();
  mcr_ = value & kMcrMask;
  const uint8_t new_lines = modem_status_lines();
  const uint8_t changed = old_lines ^ new_lines;
  if ((changed & kMsrCts) != 0) {
    modem_deltas_ |= kMsrDeltaCts;
  }
  if ((changed & kMsrDsr) != 0) {
    modem_deltas_ |= kMsrDeltaDsr;
  }
  if ((old_lines & kMsrRi) != 0 && (new_lines & kMsrRi) == 0) {
    modem_deltas_ |= kMsrTrailingEdgeRi;
  }
  if ((changed & kMsrDcd) != 0) {
    modem_deltas_ |= kMsrDeltaDcd;
  }
  update_irq();
}

void Serial16550::loop_back(uint8_t value) {
  if (receive_count_ == kReceiveCapacity) {
    line_errors_ |= kLsrOverrun;  // the new byte is lost, the FIFO keeps its contents
    return;
  }
  receive_fifo_[(receive_head_ + receive_count_) % kReceiveCapacity] = value;
  ++receive_count_;
}

void Serial16550::clear_receive_fifo() {
  receive_head_ = 0;
  receive_count_ = 0;
}

uint8_t Serial16550::line_status() const {
  uint8_t status = kLsrThrEmpty | kLsrTransmitterEmpty | line_errors_;
  if (receive_count_ > 0) {
    status |= kLsrDataReady;
  }
  return status;
}

uint8_t Serial16550::modem_status_lines() const {
  if ((mcr_ & kMcrLoopback) == 0) {
    return kMsrConnected;
  }
  uint8_t lines = 0;
  if ((mcr_ & kMcrDtr) != 0) {
    lines |= kMsrDsr;
  }
  if ((mcr_ & kMcrRts) != 0) {
    lines |= kMsrCts;
  }
  if ((mcr_ & kMcrOut1) != 0) {
    lines |= kMsrRi;
  }
  if ((mcr_ & kMcrOut2) != 0) {
    lines |= kMsrDcd;
  }
  return lines;
}

uint8_t Serial16550::identify_interrupt() const {
  if ((ier_ & kIerLineStatus) != 0 && (line_errors_ & kLsrErrors) != 0) {
    return kIirLineStatus;
  }
  if ((ier_ & kIerReceivedData) != 0 && receive_count_ > 0) {
    // Below the trigger level the chip reports the data only after a character timeout; the
    // timeout is not modelled, the data is reported at once with the timeout's identification.
    const bool fifo = (fcr_ & kFcrEnable) != 0;
    if (fifo && receive_count_ < kTriggerLevels[fcr_ >> 6]) {
      return kIirCharacterTimeout;
    }
    return kIirReceivedData;
  }
  if ((ier_ & kIerThrEmpty) != 0 && thre_pending_) {
    return kIirThrEmpty;
  }
  if ((ier_ & kIerModemStatus) != 0 && modem_deltas_ != 0) {
    return kIirModemStatus;
  }
  return kIirNoInterrupt;
}

void Serial16550::update_irq() {
  const bool level = identify_interrupt() != kIirNoInterrupt;
  if (level != irq_level_) {
    irq_level_ = level;
    irq_.set(level);
  }
}

}  // namespace hv
