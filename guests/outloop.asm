; outloop: I/O-exit benchmark. Exactly 1,000,000 `out dx, al` to port 0x80 (the POST-code port,
; which both hv and QEMU discard), so each one costs one VM exit and nothing else. The UART
; is touched only after the loop so it does not disturb the timing of the measured part.

%include "multiboot.inc"
%include "uart.inc"

MULTIBOOT_HEADER_ELF32

ITERATIONS equ 1000000

bits 32
section .text
global _start
_start:
        cli
        mov esp, stack_top
        mov dx, 0x80
        mov ecx, ITERATIONS
        xor eax, eax
.loop:  out dx, al
        dec ecx
        jnz .loop

        call uart_init
        mov esi, msg
        call uart_puts
        DEBUG_EXIT_WITH 0

        UART_ROUTINES uart

section .rodata
msg:    db `outloop done\n`, 0

section .bss
        resb 256
stack_top:
