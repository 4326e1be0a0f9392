; cpubench: a deterministic, CPU-bound benchmark guest (instruction rate of a CPU model).
;
; It executes exactly the same instruction sequence on every run: interrupts stay off the
; whole time (IF = 0 in ring 0 and ring 3), and nothing it does depends on time (no timer,
; no TSC). Only general-purpose integer instructions do the work (no x87/SSE/AVX, no MOVBE,
; CRC32 or POPCNT instructions).
;
; Boots like hello64: Multiboot v1 with the a.out-kludge header (QEMU -kernel, hv
; auto-detect) enters _start32 in 32-bit protected mode, which turns on long mode with a boot
; page table and jumps to _start64; hv --format elf calls _start64 (e_entry) in long mode
; directly. _start64 then builds everything it needs itself:
;  - GDT with 64-bit ring-0 and ring-3 code/data segments and a TSS whose RSP0 is the stack
;    for interrupts taken from ring 3;
;  - 4-level identity paging of the first 64 MiB: 2 MiB pages, except the first 2 MiB, which
;    uses 4 KiB pages so that only the user region of this image is user-accessible;
;  - IDT: the 32 exceptions (any one is a bug: it prints the vector and RIP and exits with 2)
;    and vector 0x80, a DPL-3 interrupt gate: ring 3's way back to the kernel.
;
; The work (routine `work`, run once per phase on its own buffer and seed):
;  1. fill a 4 MiB buffer with xorshift64 (x ^= x << 13; x ^= x >> 7; x ^= x << 17; store x,
;     one 64-bit word at a time, little endian);
;  2. CRC-32 of the 4 MiB (reflected, polynomial 0xEDB88320, init and final xor 0xFFFFFFFF,
;     i.e. zlib's crc32), table-driven, the 256-entry table computed first;
;  3. heapsort (in place, non-recursive, max-heap with sift-down, unsigned compares) of the
;     first 512 Ki uint32 of the buffer (its first 2 MiB, little endian): sorting all 1 Mi
;     words of the 4 MiB would double the instruction count (about 745 million in all);
;  4. one pass over the sorted 512 Ki: count the out-of-order neighbours (must be 0) and
;     compute the checksum h = 0x811C9DC5; for each x: h = (h ^ x) * 0x01000193 (mod 2^32).
; Phase ring0: the kernel calls `work` on the buffer at 8 MiB (supervisor-only pages), seed
; SEED0. Phase ring3: the kernel enters ring 3 with iretq at user_entry, which calls the same
; `work` on the buffer at 16 MiB (user pages), seed SEED3, and returns with `int 0x80` (results
; in eax, edx, ecx). Each phase prints "ringN crc32=XXXXXXXX sorted=YYYYYYYY"; then
; "cpubench done" and exit 0 (QEMU status 1). A sort that fails the check exits with 1.
;
; Instructions executed from the image, the same on every run: 391,676,598 in all (QEMU TCG
; with a counting plugin; hv's emulator counts the same), about 196 million per phase: fill
; 6.3 M, CRC table 0.01 M, CRC 29.4 M, heapsort 155 M, check 5.2 M. Sorting all 1 Mi words
; would make it about 745 million.

%include "multiboot.inc"
%include "uart.inc"

extern _load_start, _load_end, _bss_end

KCODE       equ 0x08
KDATA       equ 0x10
UDATA       equ 0x18 | 3
UCODE       equ 0x20 | 3
TSS_SEL     equ 0x28
TSS_SIZE    equ 104

BUF_BYTES   equ 4 << 20             ; 4 MiB per phase
BUF_QWORDS  equ BUF_BYTES / 8       ; filled with xorshift64, CRC'd
SORT_WORDS  equ 512 * 1024          ; sorted: the first 512 Ki uint32 (2 MiB) of the buffer
BUF_RING0   equ 0x0800000           ; 8 MiB: supervisor-only
BUF_RING3   equ 0x1000000           ; 16 MiB: the only user-accessible 2 MiB pages
MAP_2M      equ 32                  ; 32 x 2 MiB = 64 MiB identity mapped

SEED0       equ 0x2545F4914F6CDD1D
SEED3       equ 0x9E3779B97F4A7C15

USER_RFLAGS equ 0x002               ; IF = 0, IOPL = 0

section .multiboot progbits alloc noexec nowrite align=4
mb_header:
        dd MULTIBOOT_MAGIC
        dd MULTIBOOT_AOUT_KLUDGE
        dd -(MULTIBOOT_MAGIC + MULTIBOOT_AOUT_KLUDGE)
        dd mb_header            ; header_addr
        dd _load_start          ; load_addr
        dd _load_end            ; load_end_addr
        dd _bss_end             ; bss_end_addr
        dd _start32             ; entry_addr

; ---------------------------------------------------------------------------------------------
section .text
bits 32
global _start32
_start32:
        cli
        lgdt [gdtr]                     ; 6-byte form: limit and the low 4 bytes of the base
        mov ax, KDATA
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov eax, cr4
        or eax, 1 << 5                  ; PAE
        mov cr4, eax
        mov eax, boot_pml4
        mov cr3, eax
        mov ecx, 0xC0000080             ; EFER.LME
        rdmsr
        or eax, 1 << 8
        wrmsr
        mov eax, cr0
        or eax, (1 << 31) | 1           ; PG: long mode
        mov cr0, eax
        jmp KCODE:_start64

bits 64
default rel
global _start64
_start64:
        cli
        cld
        lea rdi, [bss_begin]            ; the loader zeroes the bss; do not depend on it
        lea rcx, [bss_finish]           ; (a plain loop: the benchmark uses no string
        xor eax, eax                    ; instructions at all)
.zero:  mov [rdi], rax
        add rdi, 8
        cmp rdi, rcx
        jb .zero
        lea rsp, [kstack_top]
        lgdt [gdtr]                     ; 10-byte form
        push KCODE                      ; reload CS from our GDT (hv's ELF door brings its own)
        lea rax, [.reload]
        push rax
        o64 retf
.reload:
        mov ax, KDATA
        mov ds, ax
        mov es, ax
        mov ss, ax
        xor eax, eax
        mov fs, ax
        mov gs, ax
        call uart_init

        call setup_paging
        call setup_tss
        call setup_idt

        ; --- ring 0 phase ---
        mov edi, BUF_RING0
        mov rsi, SEED0
        call work
        lea rsi, [msg_ring0]
        call report

        ; --- ring 3 phase ---
        mov edi, BUF_RING3
        mov rsi, SEED3
        call run_user
        lea rsi, [msg_ring3]
        call report

        lea rsi, [msg_done]
        call uart_puts
        DEBUG_EXIT_WITH 0

; rsi = "ringN", eax = crc32, edx = checksum, ecx = out-of-order count. Exits with 1 if the
; sort failed.
report:
        push rax
        push rdx
        push rcx
        call uart_puts
        pop rcx
        test ecx, ecx
        jnz .bad
        lea rsi, [msg_crc]
        call uart_puts
        mov rax, [rsp + 8]
        mov ecx, 8
        call put_hex
        lea rsi, [msg_sorted]
        call uart_puts
        mov rax, [rsp]
        mov ecx, 8
        call put_hex
        lea rsi, [msg_nl]
        call uart_puts
        add rsp, 16
        ret
.bad:   lea rsi, [msg_notsorted]
        call uart_puts
        DEBUG_EXIT_WITH 1

; rax = value, ecx = number of hex digits (low ones). Clobbers rax, rcx, rdx, rsi.
put_hex:
        lea rsi, [num_end]
        mov byte [rsi], 0
.digit: mov edx, eax
        and edx, 15
        push rcx
        lea rcx, [hex_digits]
        mov dl, [rcx + rdx]
        pop rcx
        dec rsi
        mov [rsi], dl
        shr rax, 4
        dec ecx
        jnz .digit
        jmp uart_puts

        UART_ROUTINES uart

; Identity map 0..64 MiB. The PD's first entry points to a page table of 4 KiB pages for the
; first 2 MiB (user-accessible only for [user_start, user_end)); the other 31 entries are
; 2 MiB pages, user-accessible only for the ring-3 buffer. Upper levels allow user access;
; the last level decides.
setup_paging:
        lea rdi, [pml4]                 ; pml4, pdpt, pd, pt: four consecutive pages
        lea rax, [rdi + 0x1000 + 7]     ; present | writable | user
        mov [rdi], rax
        lea rax, [rdi + 0x2000 + 7]
        mov [rdi + 0x1000], rax
        lea rax, [rdi + 0x3000 + 7]
        mov [rdi + 0x2000], rax
        mov ecx, 1
.pd:    mov rax, rcx
        shl rax, 21
        or rax, 0x83                    ; present | writable | 2 MiB page
        cmp ecx, BUF_RING3 >> 21
        jb .pd_store
        cmp ecx, (BUF_RING3 + BUF_BYTES) >> 21
        jae .pd_store
        or rax, 4
.pd_store:
        mov [rdi + 0x2000 + rcx * 8], rax
        inc ecx
        cmp ecx, MAP_2M
        jb .pd
        lea r8, [user_start]
        lea r9, [user_end]
        xor ecx, ecx
.pt:    mov rax, rcx
        shl rax, 12
        lea rdx, [rax + 3]
        cmp rax, r8
        jb .pt_store
        cmp rax, r9
        jae .pt_store
        or rdx, 4
.pt_store:
        mov [rdi + 0x3000 + rcx * 8], rdx
        inc ecx
        cmp ecx, 512
        jb .pt
        mov cr3, rdi
        ret

setup_tss:
        lea rax, [int_stack_top]
        mov [tss + 4], rax              ; RSP0
        mov word [tss + 102], TSS_SIZE  ; no I/O bitmap
        lea rax, [tss]
        lea rdi, [gdt_tss]
        mov word [rdi], TSS_SIZE - 1
        mov [rdi + 2], ax
        shr rax, 16
        mov [rdi + 4], al
        mov byte [rdi + 5], 0x89        ; present, 64-bit TSS (available)
        mov byte [rdi + 6], 0
        mov [rdi + 7], ah
        shr rax, 16
        mov [rdi + 8], eax
        mov dword [rdi + 12], 0
        mov ax, TSS_SEL
        ltr ax
        ret

setup_idt:
        xor ecx, ecx
.exc:   lea rax, [exception_stubs]
        mov rax, [rax + rcx * 8]
        mov dl, 0x8E                    ; present, DPL 0, interrupt gate
        call set_gate
        inc ecx
        cmp ecx, 32
        jb .exc
        mov ecx, 0x80
        lea rax, [int80_entry]
        mov dl, 0xEE                    ; DPL 3: ring 3 may use int 0x80
        call set_gate
        lidt [idtr]
        ret

; ecx = vector, rax = handler, dl = type/attributes. Clobbers rax, rdi, r8.
set_gate:
        mov rdi, rcx
        shl rdi, 4
        lea r8, [idt]
        add rdi, r8
        mov [rdi], ax
        mov word [rdi + 2], KCODE
        mov byte [rdi + 4], 0
        mov [rdi + 5], dl
        shr rax, 16
        mov [rdi + 6], ax
        shr rax, 16
        mov [rdi + 8], eax
        mov dword [rdi + 12], 0
        ret

; rdi = buffer, rsi = seed: runs `work` in ring 3 and returns its results (eax, edx, ecx)
; when ring 3 executes `int 0x80`. Keeps the callee-saved registers like a normal call.
run_user:
        push rbx
        push rbp
        push r12
        push r13
        push r14
        push r15
        mov [saved_rsp], rsp
        mov ax, UDATA
        mov ds, ax
        mov es, ax
        push UDATA                      ; ss
        lea rax, [user_stack_top]
        push rax                        ; rsp
        push USER_RFLAGS
        push UCODE                      ; cs
        lea rax, [user_entry]
        push rax                        ; rip
        iretq                           ; rdi, rsi pass through to user_entry

; int 0x80 from ring 3: on int_stack (TSS.RSP0) with the CPU's frame. The user code is done:
; drop the frame, go back to run_user's stack and return from it.
int80_entry:
        test byte [rsp + 8], 3          ; saved CS: must come from ring 3
        jz .not_user
        mov rsp, [saved_rsp]
        push rax
        mov ax, KDATA
        mov ds, ax
        mov es, ax
        pop rax
        pop r15
        pop r14
        pop r13
        pop r12
        pop rbp
        pop rbx
        ret
.not_user:
        push 0
        push 0x80
        jmp exception_common

%macro EXC_STUB 1
exc%1:
  %if %1 != 8 && %1 != 10 && %1 != 11 && %1 != 12 && %1 != 13 && %1 != 14 && %1 != 17 && %1 != 21 && %1 != 29 && %1 != 30
        push 0
  %endif
        push %1
        jmp exception_common
%endmacro
%assign v 0
%rep 32
        EXC_STUB v
%assign v v + 1
%endrep

; [rsp] = vector, [rsp + 8] = error code, [rsp + 16] = rip, [rsp + 24] = cs. Never returns.
exception_common:
        lea rsi, [msg_exc]
        call uart_puts
        mov rax, [rsp]
        mov ecx, 2
        call put_hex
        lea rsi, [msg_err]
        call uart_puts
        mov rax, [rsp + 8]
        mov ecx, 8
        call put_hex
        lea rsi, [msg_at]
        call uart_puts
        mov rax, [rsp + 24]
        mov ecx, 4
        call put_hex
        mov al, ':'
        call uart_putc
        mov rax, [rsp + 16]
        mov ecx, 16
        call put_hex
        lea rsi, [msg_nl]
        call uart_puts
        DEBUG_EXIT_WITH 2

; ---------------------------------------------------------------------------------------------
section .rodata
msg_ring0:      db "ring0", 0
msg_ring3:      db "ring3", 0
msg_crc:        db " crc32=", 0
msg_sorted:     db " sorted=", 0
msg_notsorted:  db ` sort check FAILED\n`, 0
msg_done:       db `cpubench done\n`, 0
msg_exc:        db "cpubench: exception 0x", 0
msg_err:        db " error 0x", 0
msg_at:         db " at ", 0
msg_nl:         db `\n`, 0
hex_digits:     db "0123456789abcdef"

        align 8
exception_stubs:
%assign v 0
%rep 32
        dq exc %+ v
%assign v v + 1
%endrep

idtr:   dw 256 * 16 - 1
        dq idt

; ---------------------------------------------------------------------------------------------
section .data align=4096
; Boot page tables for the Multiboot path only (one 2 MiB page at 0 covers this image);
; _start64 replaces them at once.
        align 4096, db 0
boot_pml4:
        dq boot_pdpt + 3
        times 511 dq 0
boot_pdpt:
        dq boot_pd + 3
        times 511 dq 0
boot_pd:
        dq 0x83
        times 511 dq 0

        align 8, db 0
gdt:    dq 0
        dq 0x00AF9A000000FFFF           ; 0x08 kernel code, 64-bit
        dq 0x00CF92000000FFFF           ; 0x10 kernel data
        dq 0x00CFF2000000FFFF           ; 0x18 user data (DPL 3)
        dq 0x00AFFA000000FFFF           ; 0x20 user code, 64-bit (DPL 3)
gdt_tss:
        dq 0, 0                         ; 0x28 TSS, filled in at boot
gdt_end:
gdtr:   dw gdt_end - gdt - 1            ; serves both lgdt forms (32-bit reads 4 base bytes)
        dq gdt

; --- the user region: the only user-accessible 4 KiB pages of the first 2 MiB ---------------
; Everything ring 3 touches, besides its buffer: its entry, the work itself (ring 0 calls the
; same code), the CRC table and the user stack.
        align 4096, db 0
user_start:

; Ring 3 starts here with rdi = buffer, rsi = seed.
user_entry:
        call work
        int 0x80                        ; back to the kernel with eax, edx, ecx
.hang:  jmp .hang                       ; not reached

; rdi = buffer (BUF_BYTES, 8-aligned), rsi = seed (non-zero).
; Returns eax = CRC-32 of the filled buffer, edx = checksum of the sorted uint32 array,
; ecx = number of i with a[i-1] > a[i] (0 when sorted). Keeps rbx, rbp, r12-r15.
work:
        push rbx
        push rbp
        push r12
        push r13
        push r14
        push r15
        mov rbx, rdi

        ; 1. xorshift64 fill
        mov rax, rsi
        mov ecx, BUF_QWORDS
.fill:  mov rdx, rax
        shl rdx, 13
        xor rax, rdx
        mov rdx, rax
        shr rdx, 7
        xor rax, rdx
        mov rdx, rax
        shl rdx, 17
        xor rax, rdx
        mov [rdi], rax
        add rdi, 8
        dec ecx
        jnz .fill

        ; 2a. CRC table: table[n] = n shifted right 8 times, xoring the polynomial after each
        ;     shift that dropped a 1
        lea r8, [crc_table]
        xor ecx, ecx
.tab:   mov eax, ecx
        mov edx, 8
.bit:   shr eax, 1
        jnc .nopoly
        xor eax, 0xEDB88320
.nopoly:
        dec edx
        jnz .bit
        mov [r8 + rcx * 4], eax
        inc ecx
        cmp ecx, 256
        jb .tab

        ; 2b. CRC-32 of the buffer, one byte at a time
        mov eax, -1
        mov rsi, rbx
        lea rdi, [rbx + BUF_BYTES]
.crc:   movzx edx, byte [rsi]
        xor dl, al
        shr eax, 8
        xor eax, [r8 + rdx * 4]
        inc rsi
        cmp rsi, rdi
        jne .crc
        not eax
        mov r12d, eax

        ; 3. heapsort of SORT_WORDS uint32 (max-heap, then repeatedly move the max to the end)
        mov r9d, SORT_WORDS             ; heap size
        mov r14d, SORT_WORDS / 2
.build: dec r14
        mov rcx, r14
        mov r11d, [rbx + rcx * 4]
        call sift_down
        test r14, r14
        jnz .build
.sortdown:
        dec r9                          ; the heap shrinks by one: its last slot takes the max
        mov r11d, [rbx + r9 * 4]
        mov eax, [rbx]
        mov [rbx + r9 * 4], eax
        xor ecx, ecx
        call sift_down
        cmp r9, 1
        ja .sortdown

        ; 4. sortedness and checksum of the sorted array
        xor ecx, ecx                    ; out-of-order count
        mov r10d, 0x811C9DC5            ; h
        xor eax, eax                    ; previous element
        mov rsi, rbx
        lea rdi, [rbx + SORT_WORDS * 4]
.check: mov edx, [rsi]
        cmp edx, eax                    ; CF = (a[i] < a[i-1])
        adc ecx, 0
        mov eax, edx
        xor r10d, edx
        imul r10d, r10d, 0x01000193
        add rsi, 4
        cmp rsi, rdi
        jne .check

        mov eax, r12d
        mov edx, r10d
        pop r15
        pop r14
        pop r13
        pop r12
        pop rbp
        pop rbx
        ret

; Sift the value r11d down from the hole at index rcx in the heap a[0..r9) (a = rbx), moving
; larger children up, and store it where it belongs. Clobbers rax, rcx, rdx, r10, r13.
sift_down:
.level: lea rax, [rcx + rcx + 1]        ; left child
        cmp rax, r9
        jae .place
        mov edx, [rbx + rax * 4]
        lea r10, [rax + 1]              ; right child, if any and larger
        cmp r10, r9
        jae .pick
        mov r13d, [rbx + r10 * 4]
        cmp r13d, edx
        jbe .pick
        mov rax, r10
        mov edx, r13d
.pick:  cmp edx, r11d                   ; the larger child moves up if it beats the value
        jbe .place
        mov [rbx + rcx * 4], edx
        mov rcx, rax
        jmp .level
.place: mov [rbx + rcx * 4], r11d
        ret

        align 64, db 0
crc_table:
        times 256 dd 0
        align 4096, db 0
        times 4096 db 0                 ; user stack
user_stack_top:
user_end:

; ---------------------------------------------------------------------------------------------
section .bss nobits alloc noexec write align=4096
bss_begin:
pml4:   resb 4096
pdpt:   resb 4096
pd:     resb 4096
pt:     resb 4096
idt:    resb 256 * 16
        resb 4096
kstack_top:
        resb 4096
int_stack_top:
tss:    resb TSS_SIZE
        alignb 8
saved_rsp: resq 1
num_buf:   resb 23
num_end:   resb 1
        alignb 8
bss_finish:
