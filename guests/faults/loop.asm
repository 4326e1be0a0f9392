; faults/loop: announce, then spin forever with interrupts off and no I/O, so that nothing but
; the VMM's own timeout can end it (hv's test kills it; so does `timeout` under QEMU).

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
        jmp $                           ; no hlt: the vCPU must stay busy, not idle

        UART_ROUTINES uart

section .rodata
msg:    db `looping forever\n`, 0

section .bss
        resb 256
stack_top:
