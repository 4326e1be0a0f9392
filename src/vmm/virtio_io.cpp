#include "vmm/virtio_io.hpp"

namespace hv {

Result<std::unique_ptr<IoThread>> start_virtio_io_thread(Engine& engine,
                                                         std::span<VirtioMmio* const> transports,
                                                         uint64_t first_window,
                                                         uint64_t window_stride) {
  std::unique_ptr<IoThread> io = HV_TRY(IoThread::create("hv-virtio-io"));
  bool any_doorbell = false;
  for (size_t i = 0; i < transports.size(); ++i) {
    const VirtioFastPath fast_path =
        HV_TRY(transports[i]->use_io_thread(engine, *io, first_window + i * window_stride));
    any_doorbell = any_doorbell || fast_path.doorbells;
  }
  if (!any_doorbell) {
    return std::unique_ptr<IoThread>();  // nothing to wake it: no thread
  }
  HV_TRY(io->start());
  return io;
}

}  // namespace hv
