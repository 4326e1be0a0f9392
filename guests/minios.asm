; minios: a tiny 64-bit kernel that runs three ring-3 programs under preemptive scheduling.
;
; What it shows, and why each part is there:
;  - Multiboot enters in 32-bit protected mode; the kernel switches to long mode itself.
;  - GDT with ring-0 and ring-3 segments, and a TSS whose RSP0 is the kernel stack of the
;    running program: the CPU loads it on every interrupt/exception taken from ring 3.
;  - Per-program 4-level page tables: the first 2 MiB is identity-mapped with 4 KiB pages,
;    supervisor-only except for that program's own pages and one page shared by all programs.
;    So a program can read neither the kernel nor another program.
;  - System calls both through `syscall` (STAR/LSTAR/SFMASK, EFER.SCE, back with sysretq) and
;    through `int 0x80` (an interrupt gate with DPL 3, back with iretq).
;  - The 8254 PIT (channel 0) drives IRQ 0 through the 8259 PIC, remapped to vector 0x20; each
;    tick is acknowledged with an EOI and switches to the next program (round robin).
;  - #PF and #GP raised in ring 3 kill the program; the kernel and the others carry on.
;
; The para-virtual build (nasm -DPARAVIRT, minios-pv.elf) looks for hv's hypercall interface at
; boot (CPUID leaf 0x40000100, docs/hypercalls.md). When it is there, the kernel writes each
; string with one CONSOLE_WRITE instead of polling the UART byte by byte, and its tick comes from
; SET_TIMER (one-shot, re-armed on every tick, pulsing GSI 0 = the PIC's IRQ 0) instead of the
; PIT. Without it (QEMU, or a hypervisor that is not hv) it uses the UART and the PIT as the
; normal build does. Both builds print the same bytes and end the same way (debug-exit 0).
;
; System calls (number in rax, arguments in rdi, rsi, result in rax; the same numbers for
; `syscall` and `int 0x80`):
;    0 write(buf, len)  bytes to the console; -1 unless buf..buf+len is the caller's memory
;    1 getpid()
;    2 yield()          run the next program; returns how many OTHER programs are alive
;    3 exit(code)
;
; The console output must not depend on when timer ticks land, so every line a program prints
; is gated on progress made by the others: a `turn` byte and a `flag` byte in the shared page,
; and for "B/C is gone" the yield() result, which changes exactly when the kernel ends a
; program. The story (pid 1 = A, 2 = B, 3 = C):
;    A says hello via syscall, prints getpid, yields once, then spins in ring 3 on the flag,
;    which only B sets: only a timer interrupt can let B run and then A continue.
;    B says hello via int 0x80, prints getpid, sets the flag, and once A allows it reads
;    kernel memory: killed by #PF. A, still alive, lets C go; C calls exit(7). A then executes
;    hlt (privileged: #GP in ring 3 with IOPL 0) and is killed. The kernel reports that all
;    programs are done and exits through the debug-exit port with 0.
; C exists to show exit(): A and B must both end by being killed.

%include "multiboot.inc"
%include "uart.inc"

MULTIBOOT_HEADER_ELF32

KCODE       equ 0x08            ; GDT layout fixed by syscall/sysret: STAR[47:32] = 0x08 gives
KDATA       equ 0x10            ; kernel CS 0x08 / SS 0x10; STAR[63:48] = 0x10 gives sysret
UDATA       equ 0x18 | 3        ; SS = 0x18|3 and CS = 0x20|3
UCODE       equ 0x20 | 3
TSS_SEL     equ 0x28

VEC_TIMER   equ 0x20            ; IRQ 0 after remapping the master PIC to 0x20
VEC_INT80   equ 0x80
VEC_SYSCALL equ 0x100           ; not a real vector: marks frames built by syscall_entry

SYS_WRITE   equ 0
SYS_GETPID  equ 1
SYS_YIELD   equ 2
SYS_EXIT    equ 3

%ifndef PIT_HZ
PIT_HZ      equ 100             ; any rate gives the same output (try nasm -DPIT_HZ=1000)
%endif
PIT_DIVISOR equ 1193182 / PIT_HZ
PV_TICK_NS  equ 1000000000 / PIT_HZ   ; the same tick through SET_TIMER

; hv's hypercall interface (docs/hypercalls.md).
HV_CPUID_BASE     equ 0x40000100    ; EAX = highest hv leaf, EBX:ECX:EDX = "hvHypervisor"
HV_CPUID_FEATURES equ 0x40000101    ; EAX = ABI version, EBX = doorbell port
HC_CONSOLE_WRITE  equ 1             ; rbx = guest-physical address, rcx = length
HC_SET_TIMER      equ 3             ; rbx = delay in ns, rcx = GSI

KERNEL_BASE equ 0x100000        ; what B reads to get killed
USER_RFLAGS equ 0x202           ; IF set, IOPL 0: cli/hlt/in/out fault in ring 3

TSS_RSP0    equ 4
TSS_SIZE    equ 104

; Trap frame, lowest address first: what interrupt_common pushes, then the vector and error
; code from the stub, then what the CPU pushed (syscall_entry builds the same picture).
F_RAX    equ 0 * 8
F_RBX    equ 1 * 8
F_RCX    equ 2 * 8
F_RDX    equ 3 * 8
F_RSI    equ 4 * 8
F_RDI    equ 5 * 8
F_VEC    equ 15 * 8
F_ERR    equ 16 * 8
F_RIP    equ 17 * 8
F_CS     equ 18 * 8
F_RFLAGS equ 19 * 8
F_RSP    equ 20 * 8
F_SS     equ 21 * 8
FRAME_SIZE equ 22 * 8

struc proc
  .pid:    resq 1
  .alive:  resq 1
  .frame:  resq 1               ; where its trap frame is while it is not running
  .kstack: resq 1               ; top of its kernel stack (TSS.RSP0 while it runs)
  .space:  resq 1               ; its PML4 (+0x1000 PDPT, +0x2000 PD, +0x3000 PT)
  .ustart: resq 1               ; its user region [ustart, uend); the stack ends at uend
  .uend:   resq 1
  .entry:  resq 1
endstruc
NPROC equ 3

extern user_a_start, user_a_end, user_b_start, user_b_end, user_c_start, user_c_end
extern shared_start, bss_start, kernel_end

; ---------------------------------------------------------------------------------------------
section .text
bits 32
global _start
_start:
        cli
        mov edi, bss_start              ; Multiboot loaders zero the bss, but the IDT and TSS
        mov ecx, kernel_end             ; must start out zero (not-present gates, no IST),
        sub ecx, edi                    ; so do not depend on it
        xor eax, eax
        rep stosb
        lgdt [gdtr]                     ; reads the 6-byte form: limit and a 32-bit base
        mov eax, cr4
        or eax, 1 << 5                  ; PAE
        mov cr4, eax
        mov eax, boot_pml4
        mov cr3, eax
        mov ecx, 0xC0000080             ; EFER
        rdmsr
        or eax, (1 << 8) | 1            ; LME, and SCE so that `syscall` is allowed later
        wrmsr
        mov eax, cr0
        or eax, (1 << 31) | 1           ; PG: long mode becomes active
        mov cr0, eax
        jmp KCODE:long_entry

bits 64
default rel
long_entry:
        mov ax, KDATA
        mov ds, ax
        mov es, ax
        mov ss, ax
        xor eax, eax
        mov fs, ax
        mov gs, ax
        lea rsp, [boot_stack_top]
%ifdef PARAVIRT
        call pv_detect
        cmp byte [pv_present], 0
        jne .console_ready              ; the console is the hypercall: no UART to set up
%endif
        call uart_init
.console_ready:
        lea rsi, [msg_boot]
        call con_puts

        ; TSS descriptor (16 bytes in long mode): the base is only known after linking.
        lea rax, [tss]
        lea rdi, [gdt_tss]
        mov word [rdi], TSS_SIZE - 1
        mov [rdi + 2], ax
        shr rax, 16
        mov [rdi + 4], al
        mov byte [rdi + 5], 0x89        ; present, 64-bit TSS (available)
        mov [rdi + 7], ah
        shr rax, 16
        mov [rdi + 8], eax
        ; I/O bitmap offset past the limit: no bitmap. Left at 0, the TSS's own bytes would be
        ; read as a bitmap whose zero bits GRANT ring 3 access to those ports.
        mov word [tss + 102], TSS_SIZE
        mov ax, TSS_SEL
        ltr ax

        ; IDT: the 32 exceptions, IRQ 0-15 (only the timer does anything), int 0x80 for ring 3.
        xor ecx, ecx
.exc:   lea rax, [exception_stubs]
        mov rax, [rax + rcx * 8]
        mov dl, 0x8E                    ; present, DPL 0, 64-bit interrupt gate (IF cleared)
        call set_gate
        inc ecx
        cmp ecx, 32
        jb .exc
        lea rax, [timer_stub]
        call set_gate
        inc ecx
.irq:   lea rax, [spurious_stub]        ; masked IRQs can still show up as spurious 7/15
        call set_gate
        inc ecx
        cmp ecx, 0x30
        jb .irq
        mov ecx, VEC_INT80
        lea rax, [int80_stub]
        mov dl, 0xEE                    ; DPL 3: ring 3 may use `int 0x80` (else #GP)
        call set_gate
        lidt [idtr]

        ; syscall/sysret
        mov ecx, 0xC0000081             ; STAR
        xor eax, eax
        mov edx, (0x10 << 16) | KCODE
        wrmsr
        mov ecx, 0xC0000082             ; LSTAR: where syscall goes
        lea rax, [syscall_entry]
        mov rdx, rax
        shr rdx, 32
        wrmsr
        mov ecx, 0xC0000084             ; SFMASK: clear IF (no interrupt before we are on the
        mov eax, 0x40700                ; kernel stack), TF, DF, AC on entry
        xor edx, edx
        wrmsr

        ; 8259 PICs: remap IRQ 0-7 to 0x20-0x27 and 8-15 to 0x28-0x2f, out of the exception
        ; range; unmask IRQ 0 only.
        mov al, 0x11                    ; ICW1: edge triggered, cascade, ICW4 follows
        out 0x20, al
        out 0xa0, al
        mov al, 0x20                    ; ICW2: vector base
        out 0x21, al
        mov al, 0x28
        out 0xa1, al
        mov al, 4                       ; ICW3: slave on IRQ 2
        out 0x21, al
        mov al, 2
        out 0xa1, al
        mov al, 1                       ; ICW4: 8086 mode, normal EOI
        out 0x21, al
        out 0xa1, al
        mov al, 0xfe
        out 0x21, al
        mov al, 0xff
        out 0xa1, al

%ifdef PARAVIRT
        cmp byte [pv_present], 0
        je .pit
        call pv_arm_timer               ; the first tick; on_timer arms each next one
        jmp .timer_ready
.pit:
%endif
        ; 8254 channel 0, mode 2 (rate generator): IRQ 0 every 1/PIT_HZ s.
        mov al, 0x34
        out 0x43, al
        mov ax, PIT_DIVISOR
        out 0x40, al
        mov al, ah
        out 0x40, al
.timer_ready:

        lea rsi, [msg_ready]
        call con_puts

        lea rbx, [procs]
.proc:  call setup_process
        add rbx, proc_size
        lea rax, [procs_end]
        cmp rbx, rax
        jb .proc

        lea rsi, [msg_start]
        call con_puts
        lea rbx, [procs]
        call switch_to
        mov rsp, rax
        jmp return_to_user

; ecx = vector, rax = handler, dl = type/attributes. Clobbers rax, rdi, r8.
set_gate:
        mov rdi, rcx
        shl rdi, 4
        lea r8, [idt]
        add rdi, r8
        mov [rdi], ax
        mov word [rdi + 2], KCODE
        mov byte [rdi + 4], 0           ; no IST
        mov [rdi + 5], dl
        shr rax, 16
        mov [rdi + 6], ax
        shr rax, 16
        mov [rdi + 8], eax
        mov dword [rdi + 12], 0
        ret

; rbx = process. Builds its page tables and the trap frame its first iretq will consume.
setup_process:
        mov rdi, [rbx + proc.space]
        mov ecx, 4 * 512
        xor eax, eax
        rep stosq
        mov rdi, [rbx + proc.space]
        ; The upper levels allow user access; the PT entries decide (rights are ANDed).
        lea rax, [rdi + 0x1000 + 7]     ; present | writable | user
        mov [rdi], rax
        lea rax, [rdi + 0x2000 + 7]
        mov [rdi + 0x1000], rax
        lea rax, [rdi + 0x3000 + 7]
        mov [rdi + 0x2000], rax
        lea rsi, [rdi + 0x3000]
        lea r8, [shared_start]
        mov ecx, 1                      ; page 0 stays unmapped: catches null pointers
.pte:   mov rax, rcx
        shl rax, 12
        lea rdx, [rax + 3]              ; present | writable, supervisor-only by default
        cmp rax, [rbx + proc.ustart]
        jb .shared
        cmp rax, [rbx + proc.uend]
        jb .user
.shared:
        cmp rax, r8
        jne .store
.user:  or rdx, 4
.store: mov [rsi + rcx * 8], rdx
        inc ecx
        cmp ecx, 512
        jb .pte

        mov rdi, [rbx + proc.kstack]
        sub rdi, FRAME_SIZE
        mov [rbx + proc.frame], rdi
        mov ecx, FRAME_SIZE / 8
        xor eax, eax
        rep stosq
        mov rdi, [rbx + proc.frame]
        mov rax, [rbx + proc.entry]
        mov [rdi + F_RIP], rax
        mov qword [rdi + F_CS], UCODE
        mov qword [rdi + F_RFLAGS], USER_RFLAGS
        mov rax, [rbx + proc.uend]
        mov [rdi + F_RSP], rax
        mov qword [rdi + F_SS], UDATA
        ret

; --- entry and exit paths --------------------------------------------------------------------

%macro EXC_STUB 1
exc%1:
  %if %1 != 8 && %1 != 10 && %1 != 11 && %1 != 12 && %1 != 13 && %1 != 14 && %1 != 17 && %1 != 21 && %1 != 29 && %1 != 30
        push 0                          ; this exception pushes no error code: keep one layout
  %endif
        push %1
        jmp interrupt_common
%endmacro

%assign v 0
%rep 32
        EXC_STUB v
%assign v v + 1
%endrep

timer_stub:
        push 0
        push VEC_TIMER
        jmp interrupt_common

int80_stub:
        push 0
        push VEC_INT80
        jmp interrupt_common

spurious_stub:                          ; a spurious IRQ must not be acknowledged: just return
        iretq

; `syscall` does not switch stacks (and interrupts are off thanks to SFMASK): move to the
; running program's kernel stack and build the same frame an interrupt would have.
syscall_entry:
        mov [user_rsp_scratch], rsp
        mov rsp, [syscall_kstack]
        push UDATA
        push qword [user_rsp_scratch]
        push r11                        ; user rflags
        push UCODE
        push rcx                        ; user rip
        push 0
        push VEC_SYSCALL
        ; fall through

interrupt_common:
        push r15
        push r14
        push r13
        push r12
        push r11
        push r10
        push r9
        push r8
        push rbp
        push rdi
        push rsi
        push rdx
        push rcx
        push rbx
        push rax
        cld                             ; ring 3 may have left DF set
        mov rdi, rsp
        call dispatch                   ; rax = frame to resume, maybe another program's
        mov rsp, rax
return_to_user:
        pop rax
        pop rbx
        pop rcx
        pop rdx
        pop rsi
        pop rdi
        pop rbp
        pop r8
        pop r9
        pop r10
        pop r11
        pop r12
        pop r13
        pop r14
        pop r15
        ; A frame remembers how it was entered: resume a syscall with sysretq, anything else
        ; (an interrupt, or the first start of a program) with iretq.
        cmp qword [rsp], VEC_SYSCALL
        je .sysret
        add rsp, 16                     ; vector, error code
        iretq
.sysret:
        add rsp, 16
        pop rcx                         ; rip
        add rsp, 8                      ; cs (sysret takes it from STAR)
        pop r11                         ; rflags
        pop rsp                         ; user rsp; interrupts stay off until sysretq
        o64 sysret

; --- the kernel proper: runs with interrupts off, on the current program's kernel stack ------

; rdi = trap frame of the current program. Returns in rax the frame to resume. rbx and rdi
; stay the current process and its frame throughout.
dispatch:
        mov rbx, [current]
        mov [rbx + proc.frame], rdi
        mov rax, [rdi + F_VEC]
        cmp rax, VEC_TIMER
        je on_timer
        cmp rax, VEC_SYSCALL
        je on_syscall
        cmp rax, VEC_INT80
        je on_syscall
        jmp on_exception                ; the stubs only produce these and 0..31

on_timer:
%ifdef PARAVIRT
        cmp byte [pv_present], 0
        je .eoi
        call pv_arm_timer               ; SET_TIMER is one-shot: arm the next tick
.eoi:
%endif
        mov al, 0x20                    ; non-specific EOI to the master PIC (IRQ 0 is there)
        out 0x20, al
        jmp schedule

on_syscall:
        mov rax, [rdi + F_RAX]
        cmp rax, SYS_WRITE
        je sys_write
        cmp rax, SYS_GETPID
        je sys_getpid
        cmp rax, SYS_YIELD
        je sys_yield
        cmp rax, SYS_EXIT
        je sys_exit
        mov qword [rdi + F_RAX], -1
        mov rax, rdi
        ret

sys_write:
        mov rsi, [rdi + F_RDI]          ; buf
        mov rcx, [rdi + F_RSI]          ; len
        mov rdx, [rbx + proc.ustart]    ; only the caller's own pages: the kernel must not
        cmp rsi, rdx                    ; print its own memory on a program's behalf
        jb .bad
        mov rdx, [rbx + proc.uend]
        cmp rsi, rdx
        ja .bad
        sub rdx, rsi
        cmp rcx, rdx
        ja .bad
        mov [rdi + F_RAX], rcx
%ifdef PARAVIRT
        cmp byte [pv_present], 0
        je .out
        call pv_write                   ; the whole buffer at once: its pages are identity-
        jmp .done                       ; mapped, so its address is also guest-physical
%endif
.out:   test rcx, rcx
        jz .done
        lodsb
        call uart_putc
        dec rcx
        jmp .out
.done:  mov rax, rdi
        ret
.bad:   mov qword [rdi + F_RAX], -1
        mov rax, rdi
        ret

sys_getpid:
        mov rax, [rbx + proc.pid]
        mov [rdi + F_RAX], rax
        mov rax, rdi
        ret

sys_yield:
        xor eax, eax                    ; count the other live programs
        lea rsi, [procs]
.count: cmp rsi, rbx
        je .skip
        add rax, [rsi + proc.alive]
.skip:  add rsi, proc_size
        lea rdx, [procs_end]
        cmp rsi, rdx
        jb .count
        mov [rdi + F_RAX], rax
        jmp schedule

sys_exit:
        lea rsi, [msg_pid]
        call con_puts
        mov rax, [rbx + proc.pid]
        call put_dec
        lea rsi, [msg_exited]
        call con_puts
        mov eax, [rdi + F_RDI]          ; the code, as an unsigned 32-bit number
        call put_dec
        lea rsi, [msg_nl]
        call con_puts
        jmp end_current

on_exception:
        test byte [rdi + F_CS], 3
        jz kernel_panic
        lea rsi, [msg_killed]
        call con_puts
        mov rax, [rbx + proc.pid]
        call put_dec
        lea rsi, [msg_colon]
        call con_puts
        mov rax, [rdi + F_VEC]
        cmp rax, 14
        je .pf
        cmp rax, 13
        je .gp
        lea rsi, [msg_exception]
        call con_puts
        mov rax, [rdi + F_VEC]
        call put_dec
        jmp .end
.pf:    lea rsi, [msg_pf]
        call con_puts
        mov rax, cr2
        call put_hex
        lea rsi, [msg_unmapped]
        test byte [rdi + F_ERR], 1      ; P: the page is there, the access was not allowed:
        jz .why                         ; for a ring-3 read that means a supervisor page
        lea rsi, [msg_kernel_mem]
.why:   call con_puts
        jmp .end
.gp:    lea rsi, [msg_gp]
        call con_puts
        ; #GP has many causes; name it only when the faulting opcode is hlt, cli or sti.
        mov rsi, [rdi + F_RIP]
        cmp rsi, [rbx + proc.ustart]    ; read the opcode only if it is the program's memory
        jb .end
        cmp rsi, [rbx + proc.uend]
        jae .end
        mov al, [rsi]
        cmp al, 0xF4                    ; hlt
        je .priv
        cmp al, 0xFA                    ; cli
        je .priv
        cmp al, 0xFB                    ; sti
        jne .end
.priv:  lea rsi, [msg_priv]
        call con_puts
.end:   lea rsi, [msg_nl]
        call con_puts
end_current:
        mov qword [rbx + proc.alive], 0
        ; fall through

; Round robin: the next live program after the current one (the current one last). Returns
; its frame in rax; with nobody left, the run is over.
schedule:
        mov rbx, [current]
        mov ecx, NPROC
.next:  add rbx, proc_size
        lea rax, [procs_end]
        cmp rbx, rax
        jb .check
        lea rbx, [procs]
.check: cmp qword [rbx + proc.alive], 0
        jne switch_to
        dec ecx
        jnz .next
        lea rsi, [msg_done]
        call con_puts
        DEBUG_EXIT_WITH 0

; rbx = process to run: its kernel stack for the next entry from ring 3 (TSS.RSP0 for
; interrupts, syscall_kstack for syscall) and its address space. Returns its frame in rax.
switch_to:
        mov [current], rbx
        mov rax, [rbx + proc.kstack]
        mov [tss + TSS_RSP0], rax
        mov [syscall_kstack], rax
        mov rax, [rbx + proc.space]
        mov cr3, rax
        mov rax, [rbx + proc.frame]
        ret

kernel_panic:                           ; an exception in ring 0 is a kernel bug: say where
        lea rsi, [msg_panic]
        call con_puts
        mov rax, [rdi + F_VEC]
        call put_dec
        lea rsi, [msg_at]
        call con_puts
        mov rax, [rdi + F_RIP]
        call put_hex
        lea rsi, [msg_nl]
        call con_puts
        DEBUG_EXIT_WITH 2

; rax = value. Clobber rax, rcx, rdx, rsi (not rbx, rdi).
put_dec:
        lea rsi, [num_end]
        mov byte [rsi], 0
        mov ecx, 10
.digit: xor edx, edx
        div rcx
        add dl, '0'
        dec rsi
        mov [rsi], dl
        test rax, rax
        jnz .digit
        jmp con_puts

put_hex:
        lea rsi, [num_end]
        mov byte [rsi], 0
        lea rcx, [hex_digits]
.digit: mov edx, eax
        and edx, 15
        mov dl, [rcx + rdx]
        dec rsi
        mov [rsi], dl
        shr rax, 4
        jnz .digit
        dec rsi
        mov byte [rsi], 'x'
        dec rsi
        mov byte [rsi], '0'
        jmp con_puts

        UART_ROUTINES uart

; rsi = NUL-terminated string to the console. Clobbers rax, rdx, rsi (as uart_puts does, which
; it is without PARAVIRT or without hv); keeps rbx, rcx, rdi.
con_puts:
%ifdef PARAVIRT
        cmp byte [pv_present], 0
        je uart_puts
        push rcx
        mov rcx, rsi                    ; length up to the NUL
.len:   cmp byte [rcx], 0
        je .write
        inc rcx
        jmp .len
.write: sub rcx, rsi
        call pv_write
        pop rcx
        ret
%else
        jmp uart_puts
%endif

%ifdef PARAVIRT
; Sets pv_present and pv_port when the machine offers hv's hypercalls, version 1 or later.
; Clobbers rax, rcx, rdx (cpuid); keeps rbx.
pv_detect:
        push rbx
        mov eax, HV_CPUID_BASE
        cpuid
        cmp eax, HV_CPUID_FEATURES      ; the highest hv leaf must include the features leaf
        jb .absent
        cmp ebx, 'hvHy'                 ; "hvHypervisor", four bytes per register
        jne .absent
        cmp ecx, 'perv'
        jne .absent
        cmp edx, 'isor'
        jne .absent
        mov eax, HV_CPUID_FEATURES
        cpuid
        cmp eax, 1                      ; ABI version
        jb .absent
        mov [pv_port], bx               ; the doorbell: hv says where it is
        mov byte [pv_present], 1
.absent:
        pop rbx
        ret

; rsi = guest-physical address, rcx = length: one CONSOLE_WRITE. Clobbers rax, rdx; keeps the
; rest (the call takes its arguments in rbx and rcx, and returns in rax only).
pv_write:
        push rbx
        mov rbx, rsi
        mov eax, HC_CONSOLE_WRITE
        mov dx, [pv_port]
        out dx, eax
        pop rbx
        ret

; SET_TIMER(PV_TICK_NS, GSI 0): IRQ 0 through the PIC, as the PIT's. Clobbers rax, rdx.
pv_arm_timer:
        push rbx
        push rcx
        mov ebx, PV_TICK_NS
        xor ecx, ecx
        mov eax, HC_SET_TIMER
        mov dx, [pv_port]
        out dx, eax
        pop rcx
        pop rbx
        ret
%endif

; ---------------------------------------------------------------------------------------------
section .rodata
msg_boot:       db `[kernel] minios: in 64-bit long mode\n`, 0
msg_ready:      db `[kernel] GDT, TSS, IDT, syscall MSRs, PIC and PIT set up\n`, 0
msg_start:      db `[kernel] starting pid 1 (A), pid 2 (B) and pid 3 (C) in ring 3\n`, 0
msg_killed:     db "[kernel] killed pid ", 0
msg_colon:      db ": ", 0
msg_pf:         db "page fault at ", 0
msg_kernel_mem: db " (kernel memory)", 0
msg_unmapped:   db " (not mapped)", 0
msg_gp:         db "general protection fault", 0
msg_priv:       db " (privileged instruction)", 0
msg_exception:  db "exception ", 0
msg_pid:        db "[kernel] pid ", 0
msg_exited:     db " exited with code ", 0
msg_done:       db `[kernel] all programs done\n`, 0
msg_panic:      db "[kernel] panic: exception ", 0
msg_at:         db " at rip ", 0
msg_nl:         db `\n`, 0
hex_digits:     db "0123456789abcdef"

exception_stubs:
%assign v 0
%rep 32
        dq exc %+ v
%assign v v + 1
%endrep

        align 8
gdt:    dq 0
        dq 0x00AF9A000000FFFF           ; 0x08 kernel code, 64-bit
        dq 0x00CF92000000FFFF           ; 0x10 kernel data
        dq 0x00CFF2000000FFFF           ; 0x18 user data (DPL 3)
        dq 0x00AFFA000000FFFF           ; 0x20 user code, 64-bit (DPL 3)
gdt_tss:
        dq 0, 0                         ; 0x28 TSS, filled in at boot
gdt_end:
        ; One descriptor serves both lgdt forms: 32-bit mode reads limit + 4 bytes of base,
        ; 64-bit mode limit + 8.
gdtr:   dw gdt_end - gdt - 1
        dq gdt
idtr:   dw 256 * 16 - 1
        dq idt

section .data
        align 8
; pid, alive, frame, kernel stack top, page tables, user region start/end, entry point
procs:  dq 1, 1, 0, kstack_a_top, space_a, user_a_start, user_a_end, prog_a
        dq 2, 1, 0, kstack_b_top, space_b, user_b_start, user_b_end, prog_b
        dq 3, 1, 0, kstack_c_top, space_c, user_c_start, user_c_end, prog_c
procs_end:
current:          dq 0
pv_present:       db 0                  ; PARAVIRT: hv's hypercalls were found at boot
pv_port:          dw 0                  ; PARAVIRT: their doorbell port
syscall_kstack:   dq 0
user_rsp_scratch: dq 0

; Boot page tables: just enough (one 2 MiB page at 0, kernel-only) to turn long mode on.
section .pagetables progbits alloc noexec write align=4096
boot_pml4:
        dq boot_pdpt + 3
        times 511 dq 0
boot_pdpt:
        dq boot_pd + 3
        times 511 dq 0
boot_pd:
        dq 0x83                         ; present | writable | 2 MiB page
        times 511 dq 0

section .bss nobits alloc noexec write align=4096
space_a:   resb 4 * 4096
space_b:   resb 4 * 4096
space_c:   resb 4 * 4096
idt:       resb 256 * 16
           resb 4096
boot_stack_top:
           resb 4096
kstack_a_top:
           resb 4096
kstack_b_top:
           resb 4096
kstack_c_top:
tss:       resb TSS_SIZE
num_buf:   resb 23
num_end:   resb 1

; --- user programs ---------------------------------------------------------------------------
; Each program is position-independent ring-3 code in its own page-aligned section; it may
; touch only its own pages and the shared page.

; System call %2 through %1 (`syscall` or `int80`); arguments already in rdi, rsi.
%macro SYS 2
        mov eax, %2
  %ifidn %1, syscall
        syscall
  %else
        int 0x80
  %endif
%endmacro

; write() a string literal through %1.
%macro PRINT 2
        jmp %%code
%%text: db %2
%%len   equ $ - %%text
%%code: lea rdi, [rel %%text]
        mov esi, %%len
        SYS %1, SYS_WRITE
%endmacro

; write() %2, the digit al, then %3 through %1 (the text lives in the program's own page).
%macro PRINT_DIGIT 3
        add al, '0'
        jmp %%code
%%text: db %2
%%digit: db '?', %3
%%len   equ $ - %%text
%%code: mov [rel %%digit], al
        lea rdi, [rel %%text]
        mov esi, %%len
        SYS %1, SYS_WRITE
%endmacro

section .shared progbits alloc noexec write align=4096
flag:   db 0                            ; set by B only
turn:   db 0                            ; set by A only: how far B and C may go

section .user_a progbits alloc exec write align=4096
prog_a:
        PRINT syscall, `[A] hello from ring 3 via syscall\n`
        SYS syscall, SYS_GETPID
        PRINT_DIGIT syscall, `[A] getpid() = `, `\n`
        PRINT syscall, `[A] yield()\n`
        SYS syscall, SYS_YIELD
        PRINT_DIGIT syscall, `[A] back from yield(): `, ` other programs alive\n`
        PRINT syscall, `[A] spinning until B sets the shared flag\n`
        mov byte [rel turn], 1          ; B may run its part now...
.spin:  pause                           ; ...but A never enters the kernel here: only a timer
        cmp byte [rel flag], 0          ; interrupt can give B the CPU, and another one bring
        je .spin                        ; A back
        PRINT syscall, `[A] preempted by the timer, saw B's flag\n`
        mov byte [rel turn], 2          ; B may touch kernel memory now
.wait_b:
        SYS syscall, SYS_YIELD          ; until only C is left besides A
        cmp rax, 1
        ja .wait_b
        PRINT syscall, `[A] still alive after B was killed\n`
        mov byte [rel turn], 3          ; C may exit now
.wait_c:
        SYS syscall, SYS_YIELD
        test rax, rax
        jnz .wait_c
        PRINT syscall, `[A] executing hlt in ring 3\n`
        hlt                             ; #GP: killed here
        mov edi, 99                     ; not reached
        SYS syscall, SYS_EXIT

section .user_b progbits alloc exec write align=4096
prog_b:
.wait1: pause
        cmp byte [rel turn], 1
        jb .wait1
        PRINT int80, `[B] hello from ring 3 via int 0x80\n`
        SYS int80, SYS_GETPID
        PRINT_DIGIT int80, `[B] getpid() = `, `\n`
        PRINT int80, `[B] setting the shared flag\n`
        mov byte [rel flag], 1
.wait2: pause
        cmp byte [rel turn], 2
        jb .wait2
        PRINT int80, `[B] reading kernel memory at 0x100000\n`
        mov eax, KERNEL_BASE
        mov al, [rax]                   ; #PF (supervisor page): killed here
        mov edi, 98                     ; not reached
        SYS int80, SYS_EXIT

section .user_c progbits alloc exec write align=4096
prog_c:
.wait:  pause
        cmp byte [rel turn], 3
        jb .wait
        PRINT syscall, `[C] exit(7)\n`
        mov edi, 7
        SYS syscall, SYS_EXIT
