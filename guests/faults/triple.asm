; faults/triple: announce, then triple-fault on purpose, without `int n` (which the nested
; PVM host cannot run in ring 0).
;
; An IDT with limit 0 has no valid gate, so: divide by zero raises #DE -> no gate, #GP -> no
; gate, #DF -> no gate -> shutdown. QEMU with -no-reboot then exits with status 0; hv reports
; the triple fault and exits 12.

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
        lidt [empty_idtr]
        xor edx, edx
        xor ecx, ecx
        div ecx                         ; #DE
        ; Not reached. If it were, report it as a failure (status 5) rather than hang.
        DEBUG_EXIT_WITH 2

        UART_ROUTINES uart

section .rodata
msg:    db `about to triple-fault\n`, 0
empty_idtr:
        dw 0                            ; limit 0: not even vector 0 fits (a gate is 8 bytes)
        dd 0

section .bss
        resb 256
stack_top:
