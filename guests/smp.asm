; smp: bring up every CPU listed in the MP table, one at a time, so the output order is fixed.
;
; hv describes CPUs only in an Intel MP 1.4 table (no ACPI), and QEMU's SeaBIOS builds one
; too, so the CPU count comes from there. The BSP wakes each AP with INIT-SIPI-SIPI. A SIPI
; starts the AP in real mode at vector * 0x1000, which must be below 1 MiB, while this image
; lives at 1 MiB: hence a small trampoline copied to TRAMPOLINE that switches to protected
; mode and jumps up into ap_entry. The BSP waits (bounded) for each AP to report before
; starting the next; the UART is still guarded by a spinlock, since nothing but that protocol
; keeps two CPUs from printing at once.
;
; Exit: 0 (status 1) when all CPUs are up; 3 (status 7) if an AP never reports.

%include "multiboot.inc"
%include "uart.inc"

MULTIBOOT_HEADER_ELF32

LAPIC        equ 0xfee00000
LAPIC_ID     equ LAPIC + 0x20
LAPIC_SVR    equ LAPIC + 0xf0
LAPIC_ICR_LO equ LAPIC + 0x300
LAPIC_ICR_HI equ LAPIC + 0x310

TRAMPOLINE   equ 0x8000                 ; SIPI vector 0x08; below 1 MiB, clear of hv's 0x500
                                        ; GDT and 0x1000-0x3fff multiboot info
MAX_CPUS     equ 64
AP_STACK     equ 1024

; Delays count `pause` iterations: no timer is calibrated here. One iteration takes ~0.7 us
; under QEMU TCG and ~3.4 us in hv on a PVM host (where ring-0 code is emulated), so the INIT
; delay is 7-34 ms and an AP gets 2-10 s to report before we give up on it.
INIT_DELAY   equ 10000                  ; after INIT (the MP spec asks for 10 ms)
SIPI_DELAY   equ 1000                   ; between the two SIPIs (200 us)
AP_TIMEOUT   equ 3000000                ; how long an AP may take to report

CODE_SEL     equ 0x08
DATA_SEL     equ 0x10

bits 32
section .text
global _start
_start:
        cli
        mov esp, bsp_stack_top
        call uart_init

        call count_cpus                 ; fills cpu_apic_ids[], ncpus
        call lock_uart
        mov esi, msg_bsp
        call uart_puts
        mov eax, [LAPIC_ID]
        shr eax, 24
        call put_dec                    ; BSP's APIC ID
        mov esi, msg_comma
        call uart_puts
        mov eax, [ncpus]
        call put_dec
        mov esi, msg_cpus
        call uart_puts
        call unlock_uart

        ; Software-enable the local APIC (SVR bit 8, spurious vector 0xff) before using the ICR.
        mov dword [LAPIC_SVR], 0x1ff

        mov esi, trampoline
        mov edi, TRAMPOLINE
        mov ecx, trampoline_end - trampoline
        rep movsb

        mov ebx, 1                      ; CPU 0 is the BSP; start CPU 1, 2, ...
.next_ap:
        cmp ebx, [ncpus]
        jae .all_up
        mov [ap_index], ebx
        mov byte [ap_done], 0
        movzx eax, byte [cpu_apic_ids + ebx]
        shl eax, 24
        mov [LAPIC_ICR_HI], eax         ; destination APIC ID
        mov eax, 0x00004500             ; INIT, level assert
        call send_ipi
        mov ecx, INIT_DELAY
        call delay
        mov eax, 0x00004600 | (TRAMPOLINE >> 12) ; STARTUP, vector = page number of TRAMPOLINE
        call send_ipi
        mov ecx, SIPI_DELAY
        call delay
        ; Second SIPI, as the MP spec prescribes: an AP that already left wait-for-SIPI state
        ; ignores it.
        mov eax, 0x00004600 | (TRAMPOLINE >> 12)
        call send_ipi

        mov ecx, AP_TIMEOUT
.wait:  cmp byte [ap_done], 0
        jne .ap_ok
        pause
        dec ecx
        jnz .wait
        call lock_uart
        mov esi, msg_ap
        call uart_puts
        mov eax, ebx
        call put_dec
        mov esi, msg_no_start
        call uart_puts
        DEBUG_EXIT_WITH 3
.ap_ok: inc ebx
        jmp .next_ap

.all_up:
        call lock_uart
        mov esi, msg_all
        call uart_puts
        mov eax, [ncpus]
        call put_dec
        mov esi, msg_up
        call uart_puts
        call unlock_uart
        DEBUG_EXIT_WITH 0

; eax = ICR low word; ICR high (destination) already written. Waits, bounded, for the local
; APIC to accept the IPI (delivery status, bit 12) so that the next write does not clobber it.
send_ipi:
        mov [LAPIC_ICR_LO], eax
        mov ecx, 1000000
.busy:  test dword [LAPIC_ICR_LO], 1 << 12
        jz .sent
        pause
        dec ecx
        jnz .busy
.sent:  ret

delay:                                  ; ecx = iterations
        pause
        dec ecx
        jnz delay
        ret

; Find the MP floating pointer ("_MP_", 16-byte aligned, checksummed) in the last KiB of base
; memory (where hv puts it, the EBDA) or in the BIOS area 0xf0000-0xfffff (SeaBIOS), then walk
; the configuration table's processor entries. CPU 0 is the BSP; enabled APs follow in table
; order. With no table at all the machine is treated as a uniprocessor.
;
; One wrinkle: SeaBIOS lists only the FIRST logical CPU of each package (QEMU's plain -smp N
; makes one package of N cores) and leaves the rest to CPUID.1: EDX.HTT set and EBX[23:16] =
; logical CPUs per package, whose APIC IDs follow the first one. So for SeaBIOS's table (OEM ID
; "BOCHSCPU"), when HTT is set and every listed APIC ID starts a package (is a multiple of that
; count rounded up to a power of two), each entry stands for a whole package and is expanded.
; Any other table, hv's included, is taken as it is: hv lists every vCPU, while its CPUID.1
; may well carry the HOST's HTT and logical count, which say nothing about the guest.
count_cpus:
        mov eax, [LAPIC_ID]
        shr eax, 24
        mov [cpu_apic_ids], al
        mov dword [ncpus], 1
        mov esi, 0x9fc00
        mov edi, 0xa0000
        call find_mp
        jnc .found
        mov esi, 0xf0000
        mov edi, 0x100000
        call find_mp
        jc .done
.found: mov esi, [esi + 4]              ; physical address of the configuration table
        test esi, esi
        jz .done                        ; a "default configuration": no table, treat as 1 CPU
        cmp dword [esi], 'PCMP'
        jne .done
        cmp dword [esi + 8], 'BOCH'     ; OEM ID "BOCHSCPU": SeaBIOS built this table
        jne .literal
        cmp dword [esi + 12], 'SCPU'
        jne .literal
        mov byte [seabios_table], 1
.literal:
        movzx ecx, word [esi + 0x22]    ; entry count
        add esi, 0x2c                   ; first entry
.entry: test ecx, ecx
        jz .packages
        movzx eax, byte [esi]           ; entry type
        cmp al, 0
        jne .other
        test byte [esi + 3], 1          ; CPU flags: enabled?
        jz .skip
        mov al, [esi + 1]               ; local APIC ID
        cmp al, [cpu_apic_ids]          ; the BSP is already CPU 0
        je .skip
        mov edx, [ncpus]
        cmp edx, MAX_CPUS
        jae .skip
        mov [cpu_apic_ids + edx], al
        inc dword [ncpus]
.skip:  add esi, 20                     ; processor entries are 20 bytes
        dec ecx
        jmp .entry
.other: cmp al, 4                       ; bus, I/O APIC, interrupt entries: 8 bytes
        ja .packages                    ; unknown type: its size is unknown, stop
        add esi, 8
        dec ecx
        jmp .entry

.packages:
        cmp byte [seabios_table], 0
        je .done
        mov eax, 1
        cpuid
        test edx, 1 << 28               ; HTT
        jz .done
        shr ebx, 16
        and ebx, 0xff                   ; ebx = logical CPUs per package
        cmp ebx, 1
        jbe .done
        mov edx, 1                      ; edx = ebx rounded up to a power of two
.pow2:  cmp edx, ebx
        jae .aligned
        shl edx, 1
        jmp .pow2
.aligned:
        dec edx                         ; mask of the in-package APIC ID bits
        xor ecx, ecx
.check: test [cpu_apic_ids + ecx], dl
        jnz .done                       ; not a package start: the table lists every CPU
        inc ecx
        cmp ecx, [ncpus]
        jb .check
        ; Expand in place from the last package down, so no entry is overwritten before use.
        mov esi, [ncpus]                ; esi = packages left
        mov eax, esi
        imul eax, ebx
        cmp eax, MAX_CPUS
        jbe .fits
        mov eax, MAX_CPUS
.fits:  mov [ncpus], eax
.pkg:   dec esi
        js .done
        mov edi, esi
        imul edi, ebx                   ; first slot of this package
        mov dl, [cpu_apic_ids + esi]    ; its first APIC ID
        xor ecx, ecx
.cpu:   cmp edi, MAX_CPUS
        jae .nextp
        mov [cpu_apic_ids + edi], dl
.nextp: inc edi
        inc dl
        inc ecx
        cmp ecx, ebx
        jb .cpu
        jmp .pkg
.done:  ret

; esi = start, edi = end. Returns CF clear and esi = pointer if found, CF set otherwise.
find_mp:
.try:   cmp esi, edi
        jae .none
        cmp dword [esi], '_MP_'
        jne .next
        movzx ecx, byte [esi + 8]       ; length in 16-byte units
        shl ecx, 4
        xor eax, eax
        xor edx, edx
.sum:   add al, [esi + edx]
        inc edx
        cmp edx, ecx
        jb .sum
        test al, al
        jz .yes
.next:  add esi, 16
        jmp .try
.none:  stc
        ret
.yes:   clc
        ret

lock_uart:
        mov al, 1
.spin:  xchg al, [uart_lock]            ; xchg with memory is implicitly locked
        test al, al
        jz .got
.wait:  pause                           ; spin on a plain read, not on the locked xchg
        cmp byte [uart_lock], 0
        jne .wait
        mov al, 1
        jmp .spin
.got:   ret

unlock_uart:
        mov byte [uart_lock], 0         ; a plain store releases on x86 (stores are ordered)
        ret

; eax = value, printed in decimal. Clobbers eax, ecx, edx, esi.
put_dec:
        mov ecx, 10
        mov esi, dec_end
        mov byte [esi], 0
.digit: xor edx, edx
        div ecx
        add dl, '0'
        dec esi
        mov [esi], dl
        test eax, eax
        jnz .digit
        jmp uart_puts

        UART_ROUTINES uart

; Runs on each AP after the trampoline: protected mode, paging off, interrupts off.
ap_entry:
        mov ax, DATA_SEL
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov ebx, [ap_index]             ; only one AP runs at a time: the BSP set this for us
        mov esp, ebx
        inc esp
        imul esp, esp, AP_STACK
        add esp, ap_stacks
        call lock_uart
        mov esi, msg_cpu
        call uart_puts
        mov eax, ebx
        call put_dec
        mov esi, msg_apic
        call uart_puts
        mov eax, [LAPIC_ID]
        shr eax, 24
        call put_dec
        mov esi, msg_nl
        call uart_puts
        call unlock_uart
        mov byte [ap_done], 1           ; after the output: the BSP may go on
.park:  cli
        hlt
        jmp .park

; Copied to TRAMPOLINE and entered by SIPI in real mode with CS = TRAMPOLINE >> 4, IP = 0:
; addresses inside it are offsets from its start.
bits 16
trampoline:
        cli
        mov ax, cs
        mov ds, ax
        o32 lgdt [tramp_gdtr - trampoline]  ; o32: a 32-bit GDT base (ours is above 1 MiB)
        mov eax, cr0
        or al, 1
        mov cr0, eax
        jmp dword CODE_SEL:ap_entry     ; 32-bit offset: ap_entry is above 1 MiB
tramp_gdtr:
        dw gdt_end - gdt - 1
        dd gdt
trampoline_end:

section .rodata
msg_bsp:      db "BSP: APIC ID ", 0
msg_comma:    db ", ", 0
msg_cpus:     db ` CPUs\n`, 0
msg_cpu:      db "CPU ", 0
msg_apic:     db ": APIC ID ", 0
msg_nl:       db `\n`, 0
msg_all:      db "all ", 0
msg_up:       db ` CPUs up\n`, 0
msg_ap:       db "AP ", 0
msg_no_start: db ` did not start\n`, 0

        align 8
gdt:    dq 0
        dq 0x00CF9A000000FFFF           ; 0x08: 32-bit code, flat
        dq 0x00CF92000000FFFF           ; 0x10: data, flat
gdt_end:

section .data
uart_lock: db 0
ap_done:   db 0
seabios_table: db 0

section .bss
ncpus:        resd 1
ap_index:     resd 1
cpu_apic_ids: resb MAX_CPUS
dec_buf:      resb 11
dec_end:      resb 1
        alignb 16
        resb 1024
bsp_stack_top:
ap_stacks:    resb MAX_CPUS * AP_STACK
