// x87, SSE and SSE2 instructions. Not implemented yet (issue 3 is in progress): every such
// instruction decodes to #UD, and CPUID does not advertise FPU/SSE support it cannot back.
#include "emu/decoder.hpp"

namespace hv::emu {

void register_fpu_sse_ops(HandlerRegistry&) {}

}  // namespace hv::emu
