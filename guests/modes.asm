; modes: one 512-byte boot sector that walks the x86 through its operating modes and says so on
; COM1 in each: real mode -> 32-bit protected mode -> 32-bit paging -> long mode (64-bit).
;
; Started at 0000:7c00 in real mode, either by hv (--format flat) or by SeaBIOS from a disk.
; SeaBIOS reads only the first sector, so everything (code, strings, GDT) fits in 510 bytes
; plus the 0x55AA signature, and there is no second stage to load.
;
; Scratch memory: 0x1000-0x3fff for page tables. Free under SeaBIOS (it owns 0-0x4ff and the
; area above 0x7c00 is ours), and hv's flat path puts nothing there.

%include "uart.inc"

CODE32_SEL equ 0x08
DATA_SEL   equ 0x10
CODE64_SEL equ 0x18

PML4 equ 0x1000
PDPT equ 0x2000
PD   equ 0x3000

bits 16
org 0x7c00
start:
        cli                             ; BIOS leaves interrupts on; we have no IVT handlers
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7c00
        jmp 0:.cs_zero                  ; some BIOSes enter at 07c0:0000; make CS 0 so that
.cs_zero:                               ; labels (org 0x7c00) are right
        call r16_init
        mov si, msg_real
        call r16_puts

        lgdt [gdtr]
        mov eax, cr0
        or al, 1                        ; CR0.PE
        mov cr0, eax
        jmp CODE32_SEL:pm32             ; the far jump loads a 32-bit CS

bits 32
pm32:
        mov ax, DATA_SEL
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov esi, msg_prot
        call p32_puts

        ; One table page serves both paging modes: entry 0 = 0x83 (present, writable, PS)
        ; read as a 32-bit PDE is a 4 MiB page at 0 (with CR4.PSE), and read as a PAE/long-mode
        ; PDE (8 bytes; the next 32-bit entry, 0, is its high half) it is a 2 MiB page at 0.
        mov edi, PML4
        mov ecx, 3 * 4096 / 4
        xor eax, eax
        rep stosd
        mov dword [PML4], PDPT + 3
        mov dword [PDPT], PD + 3
        mov dword [PD], 0x83
        mov eax, cr4
        or eax, 1 << 4                  ; CR4.PSE: 4 MiB pages in 32-bit paging
        mov cr4, eax
        mov eax, PD                     ; 32-bit paging: CR3 -> page directory
        mov cr3, eax
        mov eax, cr0
        or eax, 1 << 31                 ; CR0.PG
        mov cr0, eax
        mov esi, msg_paging
        call p32_puts

        ; EFER.LME may only change while paging is off, so: paging off, PAE on, CR3 -> PML4,
        ; LME on, paging on (which activates long mode), then a 64-bit CS.
        mov eax, cr0
        and eax, ~(1 << 31)
        mov cr0, eax
        mov eax, cr4
        or eax, 1 << 5                  ; CR4.PAE
        mov cr4, eax
        mov eax, PML4
        mov cr3, eax
        mov ecx, 0xC0000080             ; IA32_EFER
        rdmsr
        or eax, 1 << 8                  ; LME
        wrmsr
        mov eax, cr0
        or eax, 1 << 31
        mov cr0, eax
        jmp CODE64_SEL:lm64

bits 64
lm64:
        mov esp, 0x7c00                 ; upper halves of registers are undefined after the
        mov esi, msg_long               ; switch; 32-bit writes zero-extend
        call l64_puts
        DEBUG_EXIT_WITH 0

; The same UART code assembled once per mode (only real mode needs _init).
bits 16
        UART_ROUTINES r16
bits 32
        UART_OUTPUT p32
bits 64
        UART_OUTPUT l64

msg_real:   db `real mode\n`, 0
msg_prot:   db `protected mode\n`, 0
msg_paging: db `paging on\n`, 0
msg_long:   db `long mode\n`, 0

        align 8
gdt:    dq 0
        dq 0x00CF9A000000FFFF           ; 0x08: 32-bit code, flat
        dq 0x00CF92000000FFFF           ; 0x10: data, flat
        dq 0x00AF9A000000FFFF           ; 0x18: 64-bit code (L=1)
gdtr:   dw $ - gdt - 1
        dd gdt

        times 510 - ($ - $$) db 0       ; fails to assemble if the sector overflows
        dw 0xAA55
