/* Minimal QEMU 7.2 TCG plugin (plugin API v1): counts executed guest instructions exactly
   (an inline add per instruction), split by guest virtual address: >= 1 MiB (the guest
   image, its buffers) and < 1 MiB (SeaBIOS, option ROMs). Prints at exit(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb; struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *, enum qemu_plugin_op, void *, uint64_t);
__attribute__((visibility("default"))) int qemu_plugin_version = 1;
static uint64_t high, low, image;
static void trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *in = qemu_plugin_tb_get_insn(tb, i);
    qemu_plugin_register_vcpu_insn_exec_inline(in, QEMU_PLUGIN_INLINE_ADD_U64,
        qemu_plugin_insn_vaddr(in) >= 0x100000 ? &high : &low, 1);
    if (qemu_plugin_insn_vaddr(in) >= 0x100000 && qemu_plugin_insn_vaddr(in) < 0x200000)
      qemu_plugin_register_vcpu_insn_exec_inline(in, QEMU_PLUGIN_INLINE_ADD_U64, &image, 1);
  }
}
static void report(void) {
  fprintf(stderr, "insns: total %llu, at >= 1 MiB %llu, below 1 MiB %llu; in [1 MiB, 2 MiB) %llu\n",
          (unsigned long long)(high + low), (unsigned long long)high, (unsigned long long)low, (unsigned long long)image);
}
__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv) {
  qemu_plugin_register_vcpu_tb_trans_cb(id, trans);
  atexit(report);
  return 0;
}
