#include "devices/ata_disk.hpp"

#include <algorithm>
#include <string_view>

namespace hv {
namespace {

// Command block register indexes (offsets from 0x1f0).
constexpr uint64_t kDataRegister = 0;
constexpr uint64_t kErrorFeatures = 1;
constexpr uint64_t kSectorCount = 2;
constexpr uint64_t kLbaLow = 3;
constexpr uint64_t kLbaMid = 4;
constexpr uint64_t kLbaHigh = 5;
constexpr uint64_t kDevice = 6;
constexpr uint64_t kStatusCommand = 7;

constexpr uint8_t kStatusBusy = 0x80;
constexpr uint8_t kStatusReady = 0x40;
constexpr uint8_t kStatusSeekComplete = 0x10;
constexpr uint8_t kStatusDataRequest = 0x08;
constexpr uint8_t kStatusError = 0x01;
constexpr uint8_t kStatusIdle = kStatusReady | kStatusSeekComplete;

constexpr uint8_t kErrorUncorrectable = 0x40;
constexpr uint8_t kErrorIdNotFound = 0x10;
constexpr uint8_t kErrorAborted = 0x04;
constexpr uint8_t kDiagnosticPassed = 0x01;  // the error register after reset and diagnostics

constexpr uint8_t kDeviceSlave = 0x10;
constexpr uint8_t kDeviceLba = 0x40;
constexpr uint8_t kDeviceHeadMask = 0x0f;

constexpr uint8_t kControlNoInterrupt = 0x02;  // nIEN
constexpr uint8_t kControlReset = 0x04;        // SRST
constexpr uint8_t kControlHighOrder = 0x80;    // HOB

namespace opcode {
constexpr uint8_t kRecalibrateFirst = 0x10;
constexpr uint8_t kRecalibrateLast = 0x1f;
constexpr uint8_t kReadSectors = 0x20;
constexpr uint8_t kReadSectorsNoRetry = 0x21;
constexpr uint8_t kReadSectorsExt = 0x24;
constexpr uint8_t kReadMultipleExt = 0x29;
constexpr uint8_t kWriteSectors = 0x30;
constexpr uint8_t kWriteSectorsNoRetry = 0x31;
constexpr uint8_t kWriteSectorsExt = 0x34;
constexpr uint8_t kWriteMultipleExt = 0x39;
constexpr uint8_t kReadVerifySectors = 0x40;
constexpr uint8_t kReadVerifySectorsNoRetry = 0x41;
constexpr uint8_t kReadVerifySectorsExt = 0x42;
constexpr uint8_t kExecuteDeviceDiagnostic = 0x90;
constexpr uint8_t kInitializeDeviceParameters = 0x91;
constexpr uint8_t kIdentifyPacketDevice = 0xa1;
constexpr uint8_t kReadMultiple = 0xc4;
constexpr uint8_t kWriteMultiple = 0xc5;
constexpr uint8_t kSetMultipleMode = 0xc6;
constexpr uint8_t kStandbyImmediate = 0xe0;
constexpr uint8_t kIdleImmediate = 0xe1;
constexpr uint8_t kStandby = 0xe2;
constexpr uint8_t kIdle = 0xe3;
constexpr uint8_t kCheckPowerMode = 0xe5;
constexpr uint8_t kFlushCache = 0xe7;
constexpr uint8_t kFlushCacheExt = 0xea;
constexpr uint8_t kIdentifyDevice = 0xec;
constexpr uint8_t kSetFeatures = 0xef;
}  // namespace opcode

namespace feature {
constexpr uint8_t kEnableWriteCache = 0x02;
constexpr uint8_t kSetTransferMode = 0x03;
constexpr uint8_t kDisableWriteCache = 0x82;
}  // namespace feature

// SET FEATURES 0x03 sector counts: PIO default mode (with and without IORDY) and PIO flow
// control modes 0-4. The DMA modes are refused: there is no DMA engine.
constexpr uint8_t kTransferModePioDefault = 0x00;
constexpr uint8_t kTransferModePioDefaultNoIordy = 0x01;
constexpr uint8_t kTransferModePioFirst = 0x08;
constexpr uint8_t kTransferModePioLast = 0x0c;

constexpr uint8_t kPowerModeActiveOrIdle = 0xff;

constexpr uint64_t kLba28Limit = 1ull << 28;
constexpr uint32_t kMaxChsCylinders = 16383;  // what IDENTIFY word 1 may claim

constexpr std::string_view kModel = "HV ATA DISK";
constexpr std::string_view kFirmwareRevision = "1.0";

// IDENTIFY DEVICE word numbers and bits (ATA8-ACS table 22), the ones this model fills.
namespace identify_word {
constexpr size_t kGeneralConfiguration = 0;
constexpr size_t kCylinders = 1;
constexpr size_t kSpecificConfiguration = 2;
constexpr size_t kHeads = 3;
constexpr size_t kSectorsPerTrack = 6;
constexpr size_t kSerialNumber = 10;      // 20 characters
constexpr size_t kFirmwareRevision = 23;  // 8 characters
constexpr size_t kModelNumber = 27;       // 40 characters
constexpr size_t kMaxMultiple = 47;
constexpr size_t kCapabilities = 49;
constexpr size_t kCapabilities2 = 50;
constexpr size_t kPioTimingMode = 51;
constexpr size_t kFieldValidity = 53;
constexpr size_t kCurrentCylinders = 54;
constexpr size_t kCurrentHeads = 55;
constexpr size_t kCurrentSectorsPerTrack = 56;
constexpr size_t kCurrentCapacity = 57;  // two words
constexpr size_t kMultipleSetting = 59;
constexpr size_t kLba28Capacity = 60;  // two words
constexpr size_t kAdvancedPioModes = 64;
constexpr size_t kMinPioCycle = 67;
constexpr size_t kMinPioCycleIordy = 68;
constexpr size_t kMajorVersion = 80;
constexpr size_t kCommandSetsSupported = 82;  // 82, 83, 84
constexpr size_t kCommandSetsEnabled = 85;    // 85, 86, 87
constexpr size_t kLba48Capacity = 100;        // four words
constexpr size_t kSectorSizeInfo = 106;
constexpr size_t kIntegrity = 255;
}  // namespace identify_word

constexpr uint16_t kConfigurationFixedDevice = 0x0040;
constexpr uint16_t kConfigurationNoSpinUpNeededComplete = 0xc837;
constexpr uint16_t kMaxMultipleTag = 0x8000;  // word 47 bits 15:8 must read 0x80
constexpr uint16_t kCapabilityLba = 1 << 9;
constexpr uint16_t kCapabilityIordy = 1 << 11;
constexpr uint16_t kWordValid = 0x4000;  // bits 15:14 == 01: the word holds valid data
constexpr uint16_t kPioTimingMode2 = 2 << 8;
constexpr uint16_t kFieldsChsValid = 1 << 0;
constexpr uint16_t kFieldsPioTimingValid = 1 << 1;
constexpr uint16_t kFieldsUdmaValid = 1 << 2;
constexpr uint16_t kMultipleSettingValid = 0x0100;
constexpr uint16_t kAdvancedPio3And4 = 0x0003;
constexpr uint16_t kPio4CycleNs = 120;
constexpr uint16_t kMajorAta6To8 = (1 << 6) | (1 << 7) | (1 << 8);
constexpr uint16_t kFeaturePowerManagement = 1 << 3;  // word 82/85
constexpr uint16_t kFeatureWriteCache = 1 << 5;       // word 82/85
constexpr uint16_t kFeatureLba48 = 1 << 10;           // word 83/86
constexpr uint16_t kFeatureFlushCache = 1 << 12;      // word 83/86
constexpr uint16_t kFeatureFlushCacheExt = 1 << 13;   // word 83/86
constexpr uint16_t kIntegritySignature = 0xa5;

// ATA strings put the first character of each pair in the high byte of the word.
void put_ata_string(std::span<uint16_t> words, size_t first_word, size_t length,
                    std::string_view text) {
  for (size_t i = 0; i < length; ++i) {
    const auto c = static_cast<uint8_t>(i < text.size() ? text[i] : ' ');
    uint16_t& word = words[first_word + i / 2];
    word = i % 2 == 0 ? static_cast<uint16_t>((word & 0x00ff) | (c << 8))
                      : static_cast<uint16_t>((word & 0xff00) | c);
  }
}

void put_u32(std::span<uint16_t> words, size_t first_word, uint32_t value) {
  words[first_word] = static_cast<uint16_t>(value);
  words[first_word + 1] = static_cast<uint16_t>(value >> 16);
}

}  // namespace

AtaDisk::AtaDisk(IrqLine irq, BlockImage* image)
    : irq_(irq), image_(image), serial_(image->serial()) {
  set_signature();
  error_ = kDiagnosticPassed;
  status_ = kStatusIdle;
}

Status AtaDisk::register_on(IoBus& pio) {
  HV_TRY(pio.add(kCommandBlockBase, kCommandBlockLength, command_block()));
  return pio.add(kControlPort, kControlBlockLength, control_block());
}

void AtaDisk::CommandBlock::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(disk_.mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    // The data register is as wide as the access (16-bit, 32-bit, 8-bit PIO).
    const uint64_t index = offset == kDataRegister ? kDataRegister : offset + i;
    if (index == kDataRegister) {
      data[i] = disk_.read_data_byte();
    } else {
      data[i] = index < kCommandBlockLength ? disk_.read_register(index) : 0xff;
    }
  }
}

void AtaDisk::CommandBlock::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(disk_.mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t index = offset == kDataRegister ? kDataRegister : offset + i;
    if (index == kDataRegister) {
      disk_.write_data_byte(data[i]);
    } else if (index < kCommandBlockLength) {
      disk_.write_register(index, data[i]);
    }
  }
}

void AtaDisk::ControlBlock::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(disk_.mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i == 0 ? disk_.visible_status() : 0xff;
  }
}

void AtaDisk::ControlBlock::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(disk_.mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    if (offset + i == 0) {
      disk_.write_device_control(data[i]);
    }
  }
}

uint8_t AtaDisk::read_data_byte() {
  if (transfer_ != Transfer::DataIn || !is_selected_drive_present()) {
    return 0xff;
  }
  const uint8_t value = buffer_[buffer_position_++];
  if (buffer_position_ == buffer_length_) {
    if (sectors_left_ > 0) {
      load_read_block();
    } else {
      // The last block leaves without an interrupt: the driver polls status after it.
      transfer_ = Transfer::None;
      status_ = kStatusIdle;
    }
  }
  return value;
}

void AtaDisk::write_data_byte(uint8_t value) {
  if (transfer_ != Transfer::DataOut || !is_selected_drive_present()) {
    return;
  }
  buffer_[buffer_position_++] = value;
  if (buffer_position_ == buffer_length_) {
    commit_write_block();
  }
}

uint8_t AtaDisk::read_register(uint64_t index) {
  const bool high_order = (device_control_ & kControlHighOrder) != 0;
  switch (index) {
    case kErrorFeatures:
      return error_;
    case kSectorCount:
      return sector_count_.read(high_order);
    case kLbaLow:
      return lba_low_.read(high_order);
    case kLbaMid:
      return lba_mid_.read(high_order);
    case kLbaHigh:
      return lba_high_.read(high_order);
    case kDevice:
      return device_;
    case kStatusCommand:
      acknowledge_interrupt();
      return visible_status();
    default:
      return 0xff;
  }
}

void AtaDisk::write_register(uint64_t index, uint8_t value) {
  // Any command block write hands the register file back to the low-order bytes.
  device_control_ &= static_cast<uint8_t>(~kControlHighOrder);
  switch (index) {
    case kErrorFeatures:
      features_.push(value);
      break;
    case kSectorCount:
      sector_count_.push(value);
      break;
    case kLbaLow:
      lba_low_.push(value);
      break;
    case kLbaMid:
      lba_mid_.push(value);
      break;
    case kLbaHigh:
      lba_high_.push(value);
      break;
    case kDevice:
      device_ = value;
      break;
    case kStatusCommand:
      execute(value);
      break;
    default:
      break;
  }
}

void AtaDisk::write_device_control(uint8_t value) {
  const bool was_resetting = (device_control_ & kControlReset) != 0;
  const bool resetting = (value & kControlReset) != 0;
  device_control_ = value;
  if (resetting && !was_resetting) {
    // The drive drops what it was doing and shows BSY until SRST is released.
    transfer_ = Transfer::None;
    interrupt_pending_ = false;
  } else if (!resetting && was_resetting) {
    reset();
  }
  update_irq();
}

uint8_t AtaDisk::visible_status() const {
  if (!is_selected_drive_present()) {
    return 0;  // no drive drives the bus: Linux's probe reads this as "absent"
  }
  if ((device_control_ & kControlReset) != 0) {
    return kStatusBusy;
  }
  return status_;
}

void AtaDisk::execute(uint8_t command) {
  if ((device_control_ & kControlReset) != 0) {
    return;  // held in reset
  }
  acknowledge_interrupt();
  if (!is_selected_drive_present() && command != opcode::kExecuteDeviceDiagnostic) {
    return;
  }
  transfer_ = Transfer::None;

  if (command >= opcode::kRecalibrateFirst && command <= opcode::kRecalibrateLast) {
    complete();  // RECALIBRATE: there are no heads to move
    return;
  }
  const Addressing addressing = (device_ & kDeviceLba) != 0 ? Addressing::Lba28 : Addressing::Chs;
  switch (command) {
    case opcode::kReadSectors:
    case opcode::kReadSectorsNoRetry:
      start_read(addressing, 1);
      return;
    case opcode::kReadSectorsExt:
      start_read(Addressing::Lba48, 1);
      return;
    case opcode::kReadMultiple:
    case opcode::kReadMultipleExt:
      if (multiple_sectors_ == 0) {
        abort_command();  // SET MULTIPLE MODE has disabled these
        return;
      }
      start_read(command == opcode::kReadMultiple ? addressing : Addressing::Lba48,
                 multiple_sectors_);
      return;
    case opcode::kWriteSectors:
    case opcode::kWriteSectorsNoRetry:
      start_write(addressing, 1);
      return;
    case opcode::kWriteSectorsExt:
      start_write(Addressing::Lba48, 1);
      return;
    case opcode::kWriteMultiple:
    case opcode::kWriteMultipleExt:
      if (multiple_sectors_ == 0) {
        abort_command();
        return;
      }
      start_write(command == opcode::kWriteMultiple ? addressing : Addressing::Lba48,
                  multiple_sectors_);
      return;
    case opcode::kReadVerifySectors:
    case opcode::kReadVerifySectorsNoRetry:
      verify(addressing);
      return;
    case opcode::kReadVerifySectorsExt:
      verify(Addressing::Lba48);
      return;
    case opcode::kIdentifyDevice:
      identify();
      return;
    case opcode::kSetMultipleMode:
      set_multiple_mode();
      return;
    case opcode::kSetFeatures:
      set_features();
      return;
    case opcode::kInitializeDeviceParameters:
      initialize_device_parameters();
      return;
    case opcode::kFlushCache:
    case opcode::kFlushCacheExt:
      flush_cache();
      return;
    case opcode::kExecuteDeviceDiagnostic:
      set_signature();
      error_ = kDiagnosticPassed;
      status_ = kStatusIdle;
      raise_interrupt();
      return;
    case opcode::kCheckPowerMode:
      sector_count_.current = kPowerModeActiveOrIdle;
      complete();
      return;
    case opcode::kStandbyImmediate:
    case opcode::kIdleImmediate:
    case opcode::kStandby:
    case opcode::kIdle:
      complete();  // nothing spins down
      return;
    case opcode::kIdentifyPacketDevice:  // not an ATAPI device
    default:                             // NOP included
      abort_command();
      return;
  }
}

void AtaDisk::identify() {
  namespace w = identify_word;
  std::array<uint16_t, kSectorSize / 2> id{};
  const uint64_t sectors = image_->sector_count();

  id[w::kGeneralConfiguration] = kConfigurationFixedDevice;
  id[w::kSpecificConfiguration] = kConfigurationNoSpinUpNeededComplete;
  id[w::kCylinders] = static_cast<uint16_t>(
      std::min<uint64_t>(sectors / (kDefaultHeads * kDefaultSectorsPerTrack), kMaxChsCylinders));
  id[w::kHeads] = kDefaultHeads;
  id[w::kSectorsPerTrack] = kDefaultSectorsPerTrack;
  put_ata_string(id, w::kSerialNumber, 20, serial_);
  put_ata_string(id, w::kFirmwareRevision, 8, kFirmwareRevision);
  put_ata_string(id, w::kModelNumber, 40, kModel);
  id[w::kMaxMultiple] = kMaxMultipleTag | kMaxMultipleSectors;
  id[w::kCapabilities] = kCapabilityLba | kCapabilityIordy;
  id[w::kCapabilities2] = kWordValid;
  id[w::kPioTimingMode] = kPioTimingMode2;
  // Word 88 (UDMA modes) is valid and zero: no DMA of any kind.
  id[w::kFieldValidity] = kFieldsChsValid | kFieldsPioTimingValid | kFieldsUdmaValid;

  const uint64_t current_cylinders =
      std::min<uint64_t>(sectors / (heads_ * sectors_per_track_), 0xffff);
  id[w::kCurrentCylinders] = static_cast<uint16_t>(current_cylinders);
  id[w::kCurrentHeads] = static_cast<uint16_t>(heads_);
  id[w::kCurrentSectorsPerTrack] = static_cast<uint16_t>(sectors_per_track_);
  put_u32(id, w::kCurrentCapacity,
          static_cast<uint32_t>(current_cylinders * heads_ * sectors_per_track_));
  id[w::kMultipleSetting] = static_cast<uint16_t>(kMultipleSettingValid | multiple_sectors_);
  put_u32(id, w::kLba28Capacity, static_cast<uint32_t>(std::min(sectors, kLba28Limit - 1)));
  id[w::kAdvancedPioModes] = kAdvancedPio3And4;
  id[w::kMinPioCycle] = kPio4CycleNs;
  id[w::kMinPioCycleIordy] = kPio4CycleNs;
  id[w::kMajorVersion] = kMajorAta6To8;

  id[w::kCommandSetsSupported] = kFeaturePowerManagement | kFeatureWriteCache;
  id[w::kCommandSetsSupported + 1] =
      kWordValid | kFeatureLba48 | kFeatureFlushCache | kFeatureFlushCacheExt;
  id[w::kCommandSetsSupported + 2] = kWordValid;
  id[w::kCommandSetsEnabled] =
      kFeaturePowerManagement | (write_cache_enabled_ ? kFeatureWriteCache : 0);
  id[w::kCommandSetsEnabled + 1] = kFeatureLba48 | kFeatureFlushCache | kFeatureFlushCacheExt;
  id[w::kCommandSetsEnabled + 2] = kWordValid;
  for (size_t i = 0; i < 4; ++i) {
    id[w::kLba48Capacity + i] = static_cast<uint16_t>(sectors >> (16 * i));
  }
  id[w::kSectorSizeInfo] = kWordValid;  // one 512-byte logical sector per physical sector

  for (size_t i = 0; i < id.size(); ++i) {
    buffer_[2 * i] = static_cast<uint8_t>(id[i]);
    buffer_[2 * i + 1] = static_cast<uint8_t>(id[i] >> 8);
  }
  // The checksum makes the 512 bytes sum to zero.
  buffer_[2 * w::kIntegrity] = kIntegritySignature;
  uint8_t sum = 0;
  for (size_t i = 0; i < kSectorSize - 1; ++i) {
    sum = static_cast<uint8_t>(sum + buffer_[i]);
  }
  buffer_[kSectorSize - 1] = static_cast<uint8_t>(-sum);

  transfer_ = Transfer::DataIn;
  buffer_position_ = 0;
  buffer_length_ = kSectorSize;
  sectors_left_ = 0;
  error_ = 0;
  status_ = kStatusIdle | kStatusDataRequest;
  raise_interrupt();
}

void AtaDisk::start_read(Addressing addressing, uint32_t block_sectors) {
  Request request;
  if (!decode_request(addressing, &request)) {
    return;
  }
  next_lba_ = request.lba;
  sectors_left_ = request.sectors;
  block_sectors_ = block_sectors;
  load_read_block();
}

void AtaDisk::start_write(Addressing addressing, uint32_t block_sectors) {
  if (image_->read_only()) {
    abort_command();
    return;
  }
  Request request;
  if (!decode_request(addressing, &request)) {
    return;
  }
  next_lba_ = request.lba;
  sectors_left_ = request.sectors;
  block_sectors_ = block_sectors;
  start_write_block();  // the first block is asked for without an interrupt
}

void AtaDisk::verify(Addressing addressing) {
  Request request;
  if (!decode_request(addressing, &request)) {
    return;
  }
  set_address_registers(request.lba + request.sectors - 1);
  complete();
}

void AtaDisk::set_multiple_mode() {
  const uint8_t count = sector_count_.current;
  // 0 disables READ/WRITE MULTIPLE (ATA-6 and later); otherwise a power of two up to word 47.
  if (count > kMaxMultipleSectors || (count & (count - 1)) != 0) {
    abort_command();
    return;
  }
  multiple_sectors_ = count;
  complete();
}

void AtaDisk::set_features() {
  switch (features_.current) {
    case feature::kSetTransferMode: {
      const uint8_t mode = sector_count_.current;
      if (mode == kTransferModePioDefault || mode == kTransferModePioDefaultNoIordy ||
          (mode >= kTransferModePioFirst && mode <= kTransferModePioLast)) {
        complete();  // PIO timing means nothing here
      } else {
        abort_command();
      }
      return;
    }
    case feature::kEnableWriteCache:
      write_cache_enabled_ = true;
      complete();
      return;
    case feature::kDisableWriteCache:
      // Later writes are made durable before they complete; earlier ones may still be cached.
      if (!image_->flush().ok()) {
        fail_without_address(kErrorAborted);
        return;
      }
      write_cache_enabled_ = false;
      complete();
      return;
    default:
      abort_command();
      return;
  }
}

void AtaDisk::initialize_device_parameters() {
  const uint32_t sectors_per_track = sector_count_.current;
  if (sectors_per_track == 0) {
    abort_command();
    return;
  }
  sectors_per_track_ = sectors_per_track;
  heads_ = (device_ & kDeviceHeadMask) + 1u;
  complete();
}

void AtaDisk::flush_cache() {
  if (!image_->flush().ok()) {
    fail_without_address(kErrorUncorrectable);
    return;
  }
  complete();
}

void AtaDisk::load_read_block() {
  const uint32_t sectors = std::min(block_sectors_, sectors_left_);
  const size_t length = size_t{sectors} * kSectorSize;
  if (!image_->read(next_lba_ * kSectorSize, std::span(buffer_.data(), length)).ok()) {
    fail(kErrorUncorrectable, next_lba_);
    return;
  }
  transfer_ = Transfer::DataIn;
  buffer_position_ = 0;
  buffer_length_ = length;
  set_address_registers(next_lba_ + sectors - 1);
  next_lba_ += sectors;
  sectors_left_ -= sectors;
  error_ = 0;
  status_ = kStatusIdle | kStatusDataRequest;
  raise_interrupt();
}

void AtaDisk::start_write_block() {
  const uint32_t sectors = std::min(block_sectors_, sectors_left_);
  transfer_ = Transfer::DataOut;
  buffer_position_ = 0;
  buffer_length_ = size_t{sectors} * kSectorSize;
  error_ = 0;
  status_ = kStatusIdle | kStatusDataRequest;
}

void AtaDisk::commit_write_block() {
  const auto sectors = static_cast<uint32_t>(buffer_length_ / kSectorSize);
  transfer_ = Transfer::None;
  if (!image_->write(next_lba_ * kSectorSize, std::span(buffer_.data(), buffer_length_)).ok()) {
    fail(kErrorUncorrectable, next_lba_);
    return;
  }
  set_address_registers(next_lba_ + sectors - 1);
  next_lba_ += sectors;
  sectors_left_ -= sectors;
  if (sectors_left_ > 0) {
    start_write_block();
    raise_interrupt();
    return;
  }
  if (!write_cache_enabled_ && !image_->flush().ok()) {
    fail(kErrorUncorrectable, next_lba_ - 1);
    return;
  }
  complete();
}

bool AtaDisk::decode_request(Addressing addressing, Request* request) {
  addressing_ = addressing;
  uint64_t lba = 0;
  uint32_t sectors = 0;
  switch (addressing) {
    case Addressing::Lba48:
      lba = uint64_t{lba_high_.previous} << 40 | uint64_t{lba_mid_.previous} << 32 |
            uint64_t{lba_low_.previous} << 24 | uint64_t{lba_high_.current} << 16 |
            uint64_t{lba_mid_.current} << 8 | lba_low_.current;
      sectors = uint32_t{sector_count_.previous} << 8 | sector_count_.current;
      if (sectors == 0) {
        sectors = 65536;
      }
      break;
    case Addressing::Lba28:
      lba = (uint64_t{device_} & kDeviceHeadMask) << 24 | uint64_t{lba_high_.current} << 16 |
            uint64_t{lba_mid_.current} << 8 | lba_low_.current;
      sectors = sector_count_.current == 0 ? 256 : sector_count_.current;
      break;
    case Addressing::Chs: {
      const uint32_t cylinder = uint32_t{lba_high_.current} << 8 | lba_mid_.current;
      const uint32_t head = device_ & kDeviceHeadMask;
      const uint32_t sector = lba_low_.current;  // numbered from 1
      if (sector == 0 || sector > sectors_per_track_ || head >= heads_) {
        fail_without_address(kErrorIdNotFound | kErrorAborted);
        return false;
      }
      lba = (uint64_t{cylinder} * heads_ + head) * sectors_per_track_ + sector - 1;
      sectors = sector_count_.current == 0 ? 256 : sector_count_.current;
      break;
    }
  }
  const uint64_t image_sectors = image_->sector_count();
  if (lba >= image_sectors || sectors > image_sectors - lba) {
    fail(kErrorIdNotFound | kErrorAborted, std::max(lba, image_sectors));
    return false;
  }
  *request = Request{lba, sectors};
  return true;
}

void AtaDisk::set_address_registers(uint64_t lba) {
  switch (addressing_) {
    case Addressing::Lba48:
      lba_low_.current = static_cast<uint8_t>(lba);
      lba_mid_.current = static_cast<uint8_t>(lba >> 8);
      lba_high_.current = static_cast<uint8_t>(lba >> 16);
      lba_low_.previous = static_cast<uint8_t>(lba >> 24);
      lba_mid_.previous = static_cast<uint8_t>(lba >> 32);
      lba_high_.previous = static_cast<uint8_t>(lba >> 40);
      break;
    case Addressing::Lba28:
      lba_low_.current = static_cast<uint8_t>(lba);
      lba_mid_.current = static_cast<uint8_t>(lba >> 8);
      lba_high_.current = static_cast<uint8_t>(lba >> 16);
      device_ =
          static_cast<uint8_t>((device_ & ~kDeviceHeadMask) | ((lba >> 24) & kDeviceHeadMask));
      break;
    case Addressing::Chs: {
      const uint64_t track = lba / sectors_per_track_;
      const uint64_t cylinder = track / heads_;
      lba_low_.current = static_cast<uint8_t>(lba % sectors_per_track_ + 1);
      lba_mid_.current = static_cast<uint8_t>(cylinder);
      lba_high_.current = static_cast<uint8_t>(cylinder >> 8);
      device_ = static_cast<uint8_t>((device_ & ~kDeviceHeadMask) | (track % heads_));
      break;
    }
  }
}

bool AtaDisk::is_selected_drive_present() const {
  return (device_ & kDeviceSlave) == 0;
}

void AtaDisk::set_signature() {
  // An ATA (not ATAPI) device, and the master selected.
  sector_count_.set(1);
  lba_low_.set(1);
  lba_mid_.set(0);
  lba_high_.set(0);
  device_ = 0;
}

void AtaDisk::reset() {
  transfer_ = Transfer::None;
  set_signature();
  error_ = kDiagnosticPassed;
  status_ = kStatusIdle;
  interrupt_pending_ = false;  // a software reset ends without an interrupt
}

void AtaDisk::complete() {
  transfer_ = Transfer::None;
  error_ = 0;
  status_ = kStatusIdle;
  raise_interrupt();
}

void AtaDisk::abort_command() {
  fail_without_address(kErrorAborted);
}

void AtaDisk::fail(uint8_t error, uint64_t lba) {
  set_address_registers(lba);
  fail_without_address(error);
}

void AtaDisk::fail_without_address(uint8_t error) {
  transfer_ = Transfer::None;
  error_ = error;
  status_ = kStatusIdle | kStatusError;
  raise_interrupt();
}

void AtaDisk::raise_interrupt() {
  interrupt_pending_ = true;
  update_irq();
}

void AtaDisk::acknowledge_interrupt() {
  interrupt_pending_ = false;
  update_irq();
}

void AtaDisk::update_irq() {
  const bool level = interrupt_pending_ && (device_control_ & kControlNoInterrupt) == 0;
  if (level != irq_level_) {
    irq_level_ = level;
    irq_.set(level);
  }
}

}  // namespace hv
