// The virtio devices' I/O thread: on an engine with ioeventfd and irqfd (KVM), queue
// notifications wake this thread instead of exiting to the vCPU thread that wrote QueueNotify,
// and interrupts go back to the guest as eventfd edges, so vCPU threads never do device work.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "common/error.hpp"
#include "virtio/virtio_mmio.hpp"
#include "vm/engine.hpp"
#include "vm/io_thread.hpp"

namespace hv {

// Gives every transport its doorbells and interrupt eventfd (VirtioMmio::use_io_thread);
// transports[i]'s window is at first_window + i * window_stride. Returns the running thread, or
// null when the engine has no doorbells (the emulator): the transports then stay as they were,
// synchronous on the vCPU threads.
//
// Call after the engine exists and before any vCPU runs. Destroy the returned thread (which
// stops it) before the transports, that is before the Machine that owns them; the engine may go
// before or after it.
Result<std::unique_ptr<IoThread>> start_virtio_io_thread(Engine& engine,
                                                         std::span<VirtioMmio* const> transports,
                                                         uint64_t first_window,
                                                         uint64_t window_stride);

}  // namespace hv
