; hello: the smallest useful guest. Prints one line on COM1 and exits through isa-debug-exit.
;
; Boots two ways with the same code: by Multiboot (QEMU -kernel, hv auto-detect), or entered
; at the ELF e_entry in 32-bit protected mode (hv --format elf). Both give flat segments and
; paging off; only eax differs (0x2BADB002 or not), so we never look at eax/ebx.

%include "multiboot.inc"
%include "uart.inc"

MULTIBOOT_HEADER_ELF32

bits 32
section .text
global _start
_start:
        cli
        mov esp, stack_top          ; the loader's esp is undefined under Multiboot
        call uart_init
        mov esi, msg
        call uart_puts
        DEBUG_EXIT_WITH 0           ; status 1 under both QEMU and hv

        UART_ROUTINES uart

section .rodata
msg:    db `Hello from an hv guest!\n`, 0

section .bss
        resb 256
stack_top:
