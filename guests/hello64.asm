; hello64: a 64-bit guest that boots by either of two doors and then runs the same 64-bit code.
;
;  - hv --format elf: hv reads the ELF64 headers and calls e_entry (_start64) already in long
;    mode (flat segments, first 4 GiB identity mapped, interrupts off).
;  - QEMU -kernel (and hv auto-detect): Multiboot v1, which only ever enters 32-bit protected
;    mode. QEMU refuses ELF64 Multiboot images unless the header carries its own load addresses
;    (flag 16, "a.out kludge"), in which case it ignores the ELF headers entirely and jumps to
;    entry_addr (_start32). That 32-bit code builds long mode itself and jumps to _start64.

%include "multiboot.inc"
%include "uart.inc"

extern _load_start, _load_end, _bss_end

section .multiboot progbits alloc noexec nowrite align=4
mb_header:
        dd MULTIBOOT_MAGIC
        dd MULTIBOOT_AOUT_KLUDGE
        dd -(MULTIBOOT_MAGIC + MULTIBOOT_AOUT_KLUDGE)
        dd mb_header            ; header_addr: where this header itself is loaded
        dd _load_start          ; load_addr: start of the image (= header: it comes first)
        dd _load_end            ; load_end_addr: end of the bytes taken from the file
        dd _bss_end             ; bss_end_addr: the loader zeroes up to here
        dd _start32             ; entry_addr

section .text
bits 32
global _start32
_start32:
        cli
        lgdt [gdtr]                     ; 6-byte GDTR form: still in legacy protected mode
        mov ax, DATA_SEL                ; the loader's selectors index ITS GDT, not ours
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov eax, cr4
        or eax, 1 << 5                  ; CR4.PAE: long mode uses PAE-format tables
        mov cr4, eax
        mov eax, pml4
        mov cr3, eax
        mov ecx, 0xC0000080             ; IA32_EFER
        rdmsr
        or eax, 1 << 8                  ; EFER.LME
        wrmsr
        mov eax, cr0
        or eax, (1 << 31) | 1           ; PG (with LME set this activates long mode)
        mov cr0, eax
        jmp CODE64_SEL:_start64         ; load a 64-bit CS: now in 64-bit mode

bits 64
global _start64
_start64:
        ; Under hv this is the very first instruction, so the stack is ours to choose too.
        mov esp, stack_top
        call uart_init
        mov esi, msg
        call uart_puts
        DEBUG_EXIT_WITH 0

        UART_ROUTINES uart

section .rodata
msg:    db `Hello from a 64-bit hv guest!\n`, 0

CODE64_SEL equ 0x08
DATA_SEL   equ 0x10
        align 8
gdt:    dq 0
        dq 0x00AF9A000000FFFF           ; 0x08: 64-bit code (L=1), ring 0
        dq 0x00CF92000000FFFF           ; 0x10: flat data
gdtr:   dw $ - gdt - 1
        dd gdt

; Page tables for the Multiboot path only: one 2 MiB page maps 0..2 MiB, which covers this
; image at 1 MiB. hv's ELF64 path brings its own tables and never loads these.
section .data
        align 4096
pml4:   dq pdpt + 3                     ; present | writable
        times 511 dq 0
pdpt:   dq pd + 3
        times 511 dq 0
pd:     dq 0x83                         ; present | writable | 2 MiB page, physical 0
        times 511 dq 0

section .bss
        alignb 16
        resb 256
stack_top:
