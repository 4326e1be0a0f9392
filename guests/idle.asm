; idle: announce, then halt with interrupts off, for good. An idle micro-VM as a density test
; needs one: on KVM the vCPU thread sleeps in the kernel and the VMM does no work at all.

%include "multiboot.inc"
%include "uart.inc"

MULTIBOOT_HEADER_ELF32

bits 32
section .text
global _start
_start:
        cli
        mov esp, stack_top
        call uart_init
        mov esi, msg
        call uart_puts
.halt:  hlt                             ; nothing can wake it: no interrupt is enabled
        jmp .halt

        UART_ROUTINES uart

section .rodata
msg:    db `idle\n`, 0

section .bss
        resb 256
stack_top:
