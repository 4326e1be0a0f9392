; virtio: a polled virtio 1.x driver for virtio-mmio devices (register layout version 2), the
; kind hv gives a guest with --disk (if=virtio), --console virtio, --rng and --net.
;
; Boots like hello64: Multiboot v1 with address fields, a 32-bit entry that maps the first 4 GiB
; with 2 MiB pages (cache-disabled from 3 GiB up, where the MMIO windows are) and enters long
; mode; everything else is 64-bit code with interrupts off.
;
; Where the devices are:
;  - hv (found by its CPUID signature "hvHypervisor" at leaf 0x40000100, docs/hypercalls.md):
;    windows of 0x200 bytes at 0xd0000000 + i * 0x1000, i = 0..7 (hv has IRQs for 6; the
;    others read all ones from hv's empty MMIO bus and are skipped);
;  - anywhere else, QEMU's microvm machine: 24 transports at 0xfeb00000 + i * 0x200, empty ones
;    reading device ID 0. QEMU puts the first -device on the highest transport, so they are
;    scanned from the top down, which finds them in command-line order, as hv's windows are.
;    QEMU's transports are "legacy" (version 1) unless -global virtio-mmio.force-legacy=false.
;  The reference command (see tests/e2e/guests_test.cpp):
;    qemu-system-x86_64 -accel tcg -M microvm -m 128 -display none -no-reboot \
;      -global virtio-mmio.force-legacy=false \
;      -chardev stdio,id=con0,mux=on -serial chardev:con0 \
;      -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel virtio.elf \
;      -drive file=IMG,format=raw,if=none,id=d0 -device virtio-blk-device,drive=d0,serial=hv-virtio-disk \
;      -device virtio-serial-device -device virtconsole,chardev=con0 \
;      -device virtio-rng-device
;
; A window is a device when it reads magic "virt", version 2 and a nonzero device ID. The guest
; prints how many it found, then drives them by type -- block, console, rng, network, each type
; in scan order -- so the output does not depend on where a machine puts them. Each device gets
; the whole virtio 1.x initialisation: reset, ACKNOWLEDGE, DRIVER, VERSION_1 offered and the only
; feature accepted, FEATURES_OK read back, its queues (8 entries, or fewer if the device has
; fewer) with the descriptor table, available and used rings in one zeroed page each, QueueReady,
; DRIVER_OK. One request at a time is put on the available ring (NO_INTERRUPT set), notified, and
; waited for by polling the used ring's index, with a bound. After its checks a device is reset,
; so the next one can reuse the queue pages.
;
;  - block (2): capacity from the configuration; read sector 0 (its first 32 bytes, the e2e
;    test's text, and a 16-bit sum of its 512 bytes); write sector 1 with bytes (i * 3 + 0x11) &
;    0xff, FLUSH, read it back and compare (the test checks the host's file afterwards);
;    GET_ID (the tests give the disk the serial "hv-virtio-disk" on both machines).
;  - console (3): one line on the transmitq (port 0 of a console without MULTIPORT), which the
;    VMM writes where the serial port's output goes in the tests, so it shows in the output.
;  - rng (4): two 64-byte reads; neither may be all zeros and they must differ.
;  - network (1): the MAC address from the configuration, then one ARP request sent on the
;    transmitq (waited for until the device returns the buffer; nothing is received).
;
; Every step prints one line on COM1. Any failure prints what failed and exits with 1 (status 3);
; otherwise "virtio: all checks passed" and exit 0 (status 1). Uses no int n, vmcall or hlt
; (except the final parking after the debug-exit write), so the PVM nested KVM runs it.

%include "multiboot.inc"
%include "uart.inc"

extern _load_start, _load_end, _bss_end

; virtio-mmio registers (virtio 1.x, 4.2.2)
VIRTIO_MAGIC          equ 0x000
VIRTIO_VERSION        equ 0x004
VIRTIO_DEVICE_ID      equ 0x008
VIRTIO_DEV_FEATURES   equ 0x010
VIRTIO_DEV_FEAT_SEL   equ 0x014
VIRTIO_DRV_FEATURES   equ 0x020
VIRTIO_DRV_FEAT_SEL   equ 0x024
VIRTIO_QUEUE_SEL      equ 0x030
VIRTIO_QUEUE_NUM_MAX  equ 0x034
VIRTIO_QUEUE_NUM      equ 0x038
VIRTIO_QUEUE_READY    equ 0x044
VIRTIO_QUEUE_NOTIFY   equ 0x050
VIRTIO_STATUS         equ 0x070
VIRTIO_QUEUE_DESC_LO  equ 0x080
VIRTIO_QUEUE_DESC_HI  equ 0x084
VIRTIO_QUEUE_AVAIL_LO equ 0x090
VIRTIO_QUEUE_AVAIL_HI equ 0x094
VIRTIO_QUEUE_USED_LO  equ 0x0a0
VIRTIO_QUEUE_USED_HI  equ 0x0a4
VIRTIO_CONFIG_GEN     equ 0x0fc
VIRTIO_CONFIG         equ 0x100

VIRTIO_MAGIC_VALUE    equ 0x74726976      ; "virt"

STATUS_ACKNOWLEDGE    equ 1
STATUS_DRIVER         equ 2
STATUS_DRIVER_OK      equ 4
STATUS_FEATURES_OK    equ 8
STATUS_NEEDS_RESET    equ 0x40
STATUS_FAILED         equ 0x80

ID_NET     equ 1
ID_BLOCK   equ 2
ID_CONSOLE equ 3
ID_RNG     equ 4

HV_WINDOWS      equ 0xd0000000
HV_STRIDE       equ 0x1000
HV_COUNT        equ 8
MICROVM_WINDOWS equ 0xfeb00000
MICROVM_STRIDE  equ 0x200
MICROVM_COUNT   equ 24
MAX_DEVICES     equ 24

QUEUE_SIZE  equ 8               ; entries per queue we ask for
AVAIL_OFF   equ 0x400           ; in a queue page: descriptors at 0, avail and used rings here
USED_OFF    equ 0x800
DESC_NEXT   equ 1
DESC_WRITE  equ 2               ; device writes this buffer
AVAIL_NO_INTERRUPT equ 1

BLK_T_IN     equ 0
BLK_T_OUT    equ 1
BLK_T_FLUSH  equ 4
BLK_T_GET_ID equ 8

NET_HDR_LEN   equ 12            ; struct virtio_net_hdr with num_buffers (always, with VERSION_1)
ARP_FRAME_LEN equ 42

WAIT_LIMIT  equ 0x4000000       ; polls of a register or the used ring before giving up

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

section .text
bits 32
global _start32
_start32:
        cli
        cld
        lgdt [gdtr]
        mov ax, DATA_SEL
        mov ds, ax
        mov es, ax
        mov ss, ax
        ; Identity map 0..4 GiB: PML4[0] -> PDPT, PDPT[0..3] -> four page directories of
        ; 2 MiB pages. Cache disabled (PCD) from 3 GiB up: the MMIO windows.
        mov edi, pml4
        xor eax, eax
        mov ecx, (2 * 4096) / 4
        rep stosd
        mov dword [pml4], pdpt + 3
        xor ecx, ecx
.pdpt:  mov eax, ecx
        shl eax, 12
        add eax, page_dirs + 3
        mov [pdpt + ecx * 8], eax
        inc ecx
        cmp ecx, 4
        jb .pdpt
        xor ecx, ecx
.pde:   mov eax, ecx
        shl eax, 21
        or eax, 0x83                    ; present | writable | 2 MiB page
        cmp ecx, 3 * 512
        jb .cached
        or eax, 0x10                    ; PCD
.cached:
        mov [page_dirs + ecx * 8], eax
        mov dword [page_dirs + ecx * 8 + 4], 0
        inc ecx
        cmp ecx, 4 * 512
        jb .pde

        mov eax, cr4
        or eax, 1 << 5                  ; PAE
        mov cr4, eax
        mov eax, pml4
        mov cr3, eax
        mov ecx, 0xC0000080             ; EFER
        rdmsr
        or eax, 1 << 8                  ; LME
        wrmsr
        mov eax, cr0
        or eax, (1 << 31) | 1
        mov cr0, eax
        jmp CODE64_SEL:_start64

; hv --format elf enters here directly, in long mode with the first 4 GiB identity mapped.
bits 64
global _start64
_start64:
        mov esp, stack_top
        call uart_init

        call find_devices
        mov esi, msg_found
        call uart_puts
        mov eax, [device_count]
        call put_dec
        mov esi, msg_devices
        cmp dword [device_count], 1
        jne .plural
        mov esi, msg_device
.plural:
        call uart_puts
        cmp dword [legacy_count], 0
        je .no_legacy
        mov esi, msg_found
        call uart_puts
        mov eax, [legacy_count]
        call put_dec
        mov esi, msg_legacy
        call uart_puts
        DEBUG_EXIT_WITH 1
.no_legacy:

        mov eax, ID_BLOCK
        mov r15, drive_block
        call drive_all
        mov eax, ID_CONSOLE
        mov r15, drive_console
        call drive_all
        mov eax, ID_RNG
        mov r15, drive_rng
        call drive_all
        mov eax, ID_NET
        mov r15, drive_net
        call drive_all

        mov esi, msg_passed
        call uart_puts
        DEBUG_EXIT_WITH 0

; Calls r15 with rbx = the window of each device found whose ID is eax, in scan order.
drive_all:
        xor r14d, r14d
        mov r13d, eax
.next:  cmp r14d, [device_count]
        jae .done
        cmp [device_ids + r14 * 4], r13d
        jne .skip
        mov rbx, [device_bases + r14 * 8]
        push r13
        push r14
        push r15
        call r15
        pop r15
        pop r14
        pop r13
        mov dword [rbx + VIRTIO_STATUS], 0      ; reset: the device lets go of our queue pages
.skip:  inc r14d
        jmp .next
.done:  ret

; --- finding devices -----------------------------------------------------------------------

; Fills device_bases/device_ids/device_count from hv's windows or, elsewhere, microvm's.
find_devices:
        mov eax, 0x40000100
        cpuid
        cmp eax, 0x40000101
        jb .microvm
        cmp ebx, 'hvHy'
        jne .microvm
        cmp ecx, 'perv'
        jne .microvm
        cmp edx, 'isor'
        jne .microvm
        mov ebx, HV_WINDOWS
        mov r8, HV_STRIDE
        mov ecx, HV_COUNT
        jmp .scan
.microvm:
        mov ebx, MICROVM_WINDOWS + (MICROVM_COUNT - 1) * MICROVM_STRIDE
        mov r8, -MICROVM_STRIDE
        mov ecx, MICROVM_COUNT
.scan:  mov eax, [rbx + VIRTIO_MAGIC]     ; plain loads only: the simplest MMIO to emulate
        cmp eax, VIRTIO_MAGIC_VALUE
        jne .skip
        mov edx, [rbx + VIRTIO_VERSION]
        mov eax, [rbx + VIRTIO_DEVICE_ID]
        test eax, eax
        jz .skip
        cmp edx, 2
        je .modern
        inc dword [legacy_count]        ; version 1: the legacy interface, which we do not drive
        jmp .skip
.modern:
        mov edx, [device_count]
        cmp edx, MAX_DEVICES
        jae .skip
        mov [device_bases + rdx * 8], rbx
        mov [device_ids + rdx * 4], eax
        inc dword [device_count]
.skip:  add rbx, r8
        dec ecx
        jnz .scan
        ret

; --- the virtio 1.x initialisation ------------------------------------------------------

; Resets the device at rbx and negotiates VERSION_1 alone, up to FEATURES_OK. esi = the name
; used in messages ("virtio-blk").
virtio_begin:
        mov [device_name], rsi
        mov dword [rbx + VIRTIO_STATUS], 0
        mov ecx, WAIT_LIMIT
.reset: mov eax, [rbx + VIRTIO_STATUS]
        test eax, eax
        jz .reset_done
        dec ecx
        jnz .reset
        mov esi, what_reset
        jmp fail_value
.reset_done:
        mov dword [rbx + VIRTIO_STATUS], STATUS_ACKNOWLEDGE
        mov dword [rbx + VIRTIO_STATUS], STATUS_ACKNOWLEDGE | STATUS_DRIVER
        mov dword [rbx + VIRTIO_DEV_FEAT_SEL], 1
        mov eax, [rbx + VIRTIO_DEV_FEATURES]
        test eax, 1                             ; feature 32: VIRTIO_F_VERSION_1
        mov esi, what_version1
        jz fail_value
        mov dword [rbx + VIRTIO_DRV_FEAT_SEL], 0
        mov dword [rbx + VIRTIO_DRV_FEATURES], 0
        mov dword [rbx + VIRTIO_DRV_FEAT_SEL], 1
        mov dword [rbx + VIRTIO_DRV_FEATURES], 1
        mov dword [rbx + VIRTIO_STATUS], STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK
        mov eax, [rbx + VIRTIO_STATUS]
        test eax, STATUS_FEATURES_OK
        mov esi, what_features_ok
        jz fail_value
        ret

; Sets up queue r8d in queue page r8 with up to QUEUE_SIZE entries and makes it ready.
queue_setup:
        mov [rbx + VIRTIO_QUEUE_SEL], r8d
        mov eax, [rbx + VIRTIO_QUEUE_READY]
        test eax, eax
        mov esi, what_queue_not_ready
        jnz fail_value
        mov eax, [rbx + VIRTIO_QUEUE_NUM_MAX]
        test eax, eax
        mov esi, what_queue_exists
        jz fail_value
        cmp eax, QUEUE_SIZE
        jbe .size
        mov eax, QUEUE_SIZE
.size:  mov [queue_sizes + r8 * 2], ax
        mov word [queue_avail + r8 * 2], 0
        mov word [queue_used + r8 * 2], 0
        mov [rbx + VIRTIO_QUEUE_NUM], eax
        mov rdi, r8
        shl rdi, 12
        add rdi, queue_pages
        mov rdx, rdi
        mov ecx, 4096 / 8
        xor eax, eax
        rep stosq
        mov word [rdx + AVAIL_OFF], AVAIL_NO_INTERRUPT
        mov [rbx + VIRTIO_QUEUE_DESC_LO], edx
        mov dword [rbx + VIRTIO_QUEUE_DESC_HI], 0
        lea eax, [rdx + AVAIL_OFF]
        mov [rbx + VIRTIO_QUEUE_AVAIL_LO], eax
        mov dword [rbx + VIRTIO_QUEUE_AVAIL_HI], 0
        lea eax, [rdx + USED_OFF]
        mov [rbx + VIRTIO_QUEUE_USED_LO], eax
        mov dword [rbx + VIRTIO_QUEUE_USED_HI], 0
        mov dword [rbx + VIRTIO_QUEUE_READY], 1
        mov eax, [rbx + VIRTIO_QUEUE_READY]
        cmp eax, 1
        mov esi, what_queue_ready
        jne fail_value
        ret

; Sets DRIVER_OK and checks the device took it; prints "<name>: ... driver ok" with the number
; of queues in ecx.
virtio_driver_ok:
        push rcx
        mov dword [rbx + VIRTIO_STATUS], STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK
        mov eax, [rbx + VIRTIO_STATUS]
        test eax, STATUS_NEEDS_RESET | STATUS_FAILED
        mov esi, what_driver_ok
        jnz fail_value
        test eax, STATUS_DRIVER_OK
        jz fail_value
        call put_name
        mov esi, msg_driver_ok
        call uart_puts
        pop rax
        call put_dec
        mov esi, msg_queue
        call uart_puts
        ret

; Makes the chain starting at descriptor 0 of queue r8 available, notifies, and waits for the
; device to return it. Returns the used length in eax. Clobbers rcx, rdx, rdi.
submit:
        mov rdi, r8
        shl rdi, 12
        add rdi, queue_pages
        movzx eax, word [queue_avail + r8 * 2]
        movzx ecx, word [queue_sizes + r8 * 2]
        dec ecx
        mov edx, eax
        and edx, ecx
        mov word [rdi + AVAIL_OFF + 4 + rdx * 2], 0     ; ring[idx % size] = head descriptor 0
        inc eax
        mov [queue_avail + r8 * 2], ax
        mov [rdi + AVAIL_OFF + 2], ax                   ; idx, after the ring entry (x86: in order)
        mov [rbx + VIRTIO_QUEUE_NOTIFY], r8d
        mov ecx, WAIT_LIMIT
.poll:  movzx eax, word [rdi + USED_OFF + 2]
        cmp ax, [queue_used + r8 * 2]
        jne .used
        dec ecx
        jnz .poll
        mov esi, what_used
        mov eax, [rbx + VIRTIO_STATUS]
        jmp fail_value
.used:  movzx eax, word [queue_used + r8 * 2]
        movzx ecx, word [queue_sizes + r8 * 2]
        dec ecx
        and ecx, eax
        inc eax
        mov [queue_used + r8 * 2], ax
        mov eax, [rdi + USED_OFF + 4 + rcx * 8]         ; used element: id, len
        test eax, eax
        mov esi, what_used_id
        jnz fail_value
        mov eax, [rdi + USED_OFF + 4 + rcx * 8 + 4]
        ret

; Descriptor %2 of queue page %1: address %3, length %4, flags %5, next %6.
%macro DESC 6
        mov qword [%1 + (%2) * 16], %3
        mov dword [%1 + (%2) * 16 + 8], %4
        mov word [%1 + (%2) * 16 + 12], %5
        mov word [%1 + (%2) * 16 + 14], %6
%endmacro

; --- block --------------------------------------------------------------------------------

drive_block:
        mov esi, name_blk
        call virtio_begin
        xor r8d, r8d
        call queue_setup
        mov ecx, 1
        call virtio_driver_ok

        ; capacity (le64 at config offset 0), read until the config generation is stable
.capacity:
        mov ecx, [rbx + VIRTIO_CONFIG_GEN]
        mov eax, [rbx + VIRTIO_CONFIG]
        mov edx, [rbx + VIRTIO_CONFIG + 4]
        mov esi, [rbx + VIRTIO_CONFIG_GEN]
        cmp ecx, esi
        jne .capacity
        shl rdx, 32
        or rax, rdx
        push rax
        call put_name
        mov esi, msg_capacity
        call uart_puts
        pop rax
        call put_dec
        mov esi, msg_sectors
        call uart_puts

        ; read sector 0
        mov eax, BLK_T_IN
        xor edx, edx
        mov esi, sector_buf
        mov ecx, 512
        mov r9d, DESC_WRITE
        mov r12, what_read0
        call blk_request
        call put_name
        mov esi, msg_sector0
        call uart_puts
        mov esi, sector_buf
        mov ecx, 32
.text:  lodsb
        push rcx
        push rsi
        call uart_putc
        pop rsi
        pop rcx
        loop .text
        mov esi, msg_sum
        call uart_puts
        xor edi, edi
        xor eax, eax
        mov ecx, 512
.sum:   mov al, [sector_buf + rcx - 1]
        add edi, eax
        loop .sum
        mov eax, edi
        shr eax, 8
        call put_hex8
        mov eax, edi
        call put_hex8
        mov esi, msg_sum_end
        call uart_puts

        ; write sector 1 with the pattern, flush, read it back
        xor ecx, ecx
.fill:  lea eax, [rcx * 2 + rcx + 0x11]
        mov [pattern + rcx], al
        inc ecx
        cmp ecx, 512
        jb .fill
        mov eax, BLK_T_OUT
        mov edx, 1
        mov esi, pattern
        mov ecx, 512
        xor r9d, r9d
        mov r12, what_write1
        call blk_request
        mov eax, BLK_T_FLUSH
        xor edx, edx
        xor ecx, ecx
        mov r12, what_flush
        call blk_request
        mov eax, BLK_T_IN
        mov edx, 1
        mov esi, sector_buf
        mov ecx, 512
        mov r9d, DESC_WRITE
        mov r12, what_read1
        call blk_request
        mov esi, pattern
        mov edi, sector_buf
        mov ecx, 512
        repe cmpsb
        jne .differs
        call put_name
        mov esi, msg_write_ok
        call uart_puts

        ; GET_ID: 20 bytes, NUL-padded when shorter
        mov edi, id_buf
        xor eax, eax
        mov ecx, 24
        rep stosb
        mov eax, BLK_T_GET_ID
        xor edx, edx
        mov esi, id_buf
        mov ecx, 20
        mov r9d, DESC_WRITE
        mov r12, what_get_id
        call blk_request
        call put_name
        mov esi, msg_id
        call uart_puts
        mov esi, id_buf
        call uart_puts
        mov al, `\n`
        call uart_putc
        ret
.differs:
        mov eax, 511
        sub eax, ecx
        mov esi, what_compare
        jmp fail_value

; One block request on queue 0: type eax, sector rdx, data buffer rsi of ecx bytes (none if
; ecx = 0) with descriptor flags r9d (DESC_WRITE for reads). r12 names it for a failure.
blk_request:
        mov [blk_header], eax
        mov dword [blk_header + 4], 0
        mov [blk_header + 8], rdx
        mov byte [blk_status], 0xff
        DESC queue_pages, 0, blk_header, 16, DESC_NEXT, 1
        test ecx, ecx
        jz .no_data
        mov [queue_pages + 16 + 0], rsi
        mov [queue_pages + 16 + 8], ecx
        or r9d, DESC_NEXT
        mov [queue_pages + 16 + 12], r9w
        mov word [queue_pages + 16 + 14], 2
        DESC queue_pages, 2, blk_status, 1, DESC_WRITE, 0
        jmp .submit
.no_data:
        DESC queue_pages, 1, blk_status, 1, DESC_WRITE, 0
.submit:
        xor r8d, r8d
        call submit
        movzx eax, byte [blk_status]
        test eax, eax
        mov rsi, r12
        jnz fail_value
        ret

; --- console ------------------------------------------------------------------------------

drive_console:
        mov esi, name_console
        call virtio_begin
        xor r8d, r8d                    ; receiveq (port 0): ready, no buffers posted
        call queue_setup
        mov r8d, 1                      ; transmitq
        call queue_setup
        mov ecx, 2
        call virtio_driver_ok
        DESC queue_pages + 4096, 0, console_line, console_line_len, 0, 0
        mov r8d, 1
        call submit
        call put_name
        mov esi, msg_console_sent
        call uart_puts
        ret

; --- rng ----------------------------------------------------------------------------------

drive_rng:
        mov esi, name_rng
        call virtio_begin
        xor r8d, r8d
        call queue_setup
        mov ecx, 1
        call virtio_driver_ok
        mov r12, rng_buf1
        call rng_fill
        mov r12, rng_buf2
        call rng_fill
        mov esi, what_rng_zero
        mov rdi, rng_buf1
        call all_zero
        je fail_value
        mov rdi, rng_buf2
        call all_zero
        je fail_value
        mov esi, rng_buf1
        mov edi, rng_buf2
        mov ecx, 64
        repe cmpsb
        mov esi, what_rng_same
        je fail_value
        call put_name
        mov esi, msg_rng_ok
        call uart_puts
        ret

; Fills the 64 bytes at r12 from the device, with as many requests as it takes (at most 64).
rng_fill:
        xor r13d, r13d                  ; bytes so far
        mov r11d, 64                    ; requests left
.more:  lea rax, [r12 + r13]
        mov [queue_pages + 0], rax
        mov eax, 64
        sub eax, r13d
        mov [queue_pages + 8], eax
        mov word [queue_pages + 12], DESC_WRITE
        mov word [queue_pages + 14], 0
        xor r8d, r8d
        call submit
        mov esi, what_rng_length
        test eax, eax
        jz fail_value
        mov ecx, 64
        sub ecx, r13d
        cmp eax, ecx
        ja fail_value
        add r13d, eax
        cmp r13d, 64
        jae .done
        dec r11d
        jnz .more
        jmp fail_value
.done:  ret

; ZF set when the 64 bytes at rdi are all zero.
all_zero:
        mov ecx, 64
        xor eax, eax
        repe scasb
        ret

; --- network ------------------------------------------------------------------------------

drive_net:
        mov esi, name_net
        call virtio_begin
        xor r8d, r8d                    ; receiveq1
        call queue_setup
        mov r8d, 1                      ; transmitq1
        call queue_setup
        mov ecx, 2
        call virtio_driver_ok
        call put_name
        mov esi, msg_mac
        call uart_puts
        xor r12d, r12d
.byte:  test r12d, r12d
        jz .first
        mov al, ':'
        call uart_putc
.first: mov al, [rbx + VIRTIO_CONFIG + r12]
        mov [net_frame + NET_HDR_LEN + 6 + r12], al     ; Ethernet source
        mov [net_frame + NET_HDR_LEN + 22 + r12], al    ; ARP sender hardware address
        call put_hex8
        inc r12d
        cmp r12d, 6
        jb .byte
        mov al, `\n`
        call uart_putc

        ; An ARP request "who has 10.0.2.2, tell 10.0.2.15" (QEMU's user network) to the
        ; broadcast address, behind a zeroed virtio_net_hdr (12 bytes with VERSION_1).
        mov edi, net_frame
        xor eax, eax
        mov ecx, NET_HDR_LEN
        rep stosb
        mov dword [rdi], 0xffffffff                     ; destination: broadcast
        mov word [rdi + 4], 0xffff
        mov word [rdi + 12], 0x0608                     ; EtherType ARP (big-endian)
        mov dword [rdi + 14], 0x00080100                ; htype 1, ptype 0x0800
        mov dword [rdi + 18], 0x01000406                ; hlen 6, plen 4, oper 1 (request)
        mov dword [rdi + 28], 0x0f02000a                ; sender 10.0.2.15
        mov dword [rdi + 32], 0                         ; target hardware address: unknown
        mov word [rdi + 36], 0
        mov dword [rdi + 38], 0x0202000a                ; target 10.0.2.2
        DESC queue_pages + 4096, 0, net_frame, NET_HDR_LEN + ARP_FRAME_LEN, 0, 0
        mov r8d, 1
        call submit
        call put_name
        mov esi, msg_net_sent
        call uart_puts
        ret

; --- output -------------------------------------------------------------------------------

; Prints "<device name>: ".
put_name:
        mov rsi, [device_name]
        call uart_puts
        mov esi, msg_colon
        jmp uart_puts

; Prints "<device name>: <what at esi> failed (0x<eax>)" and exits with 1.
fail_value:
        mov r12d, eax
        push rsi
        call put_name
        pop rsi
        call uart_puts
        mov esi, msg_failed
        call uart_puts
        mov eax, r12d
        shr eax, 24
        call put_hex8
        mov eax, r12d
        shr eax, 16
        call put_hex8
        mov eax, r12d
        shr eax, 8
        call put_hex8
        mov eax, r12d
        call put_hex8
        mov esi, msg_failed_end
        call uart_puts
        DEBUG_EXIT_WITH 1

; Prints rax in decimal. Clobbers rax, rcx, rdx, rsi.
put_dec:
        lea rsi, [dec_buf + 20]
        mov byte [rsi], 0
        mov ecx, 10
.digit: xor edx, edx
        div rcx
        add dl, '0'
        dec rsi
        mov [rsi], dl
        test rax, rax
        jnz .digit
        jmp uart_puts

; Prints al as two hex digits. Clobbers eax, dx.
put_hex8:
        push rax
        shr al, 4
        call put_hex_digit
        pop rax
put_hex_digit:
        and al, 0x0f
        add al, '0'
        cmp al, '9'
        jbe .digit
        add al, 'a' - '9' - 1
.digit: jmp uart_putc

        UART_ROUTINES uart

section .rodata
msg_found:        db `virtio: `, 0
msg_device:       db ` device\n`, 0
msg_devices:      db ` devices\n`, 0
msg_legacy:       db ` legacy (version 1) transports with a device, not driven (QEMU: -global virtio-mmio.force-legacy=false)\n`, 0
msg_passed:       db `virtio: all checks passed\n`, 0
msg_colon:        db `: `, 0
msg_failed:       db ` failed (0x`, 0
msg_failed_end:   db `)\n`, 0
msg_driver_ok:    db `reset, VERSION_1 accepted, FEATURES_OK, DRIVER_OK, queues: `, 0
msg_queue:        db `\n`, 0
msg_capacity:     db `capacity `, 0
msg_sectors:      db ` sectors\n`, 0
msg_sector0:      db `sector 0: `, 0
msg_sum:          db ` (sum 0x`, 0
msg_sum_end:      db `)\n`, 0
msg_write_ok:     db `wrote sector 1, flushed, read back identical\n`, 0
msg_id:           db `id `, 0
msg_console_sent: db `line sent on the transmitq\n`, 0
msg_rng_ok:       db `2 x 64 bytes, neither all zero, different\n`, 0
msg_mac:          db `mac `, 0
msg_net_sent:     db `sent a 42-byte ARP request on the transmitq\n`, 0
name_blk:         db `virtio-blk`, 0
name_console:     db `virtio-console`, 0
name_rng:         db `virtio-rng`, 0
name_net:         db `virtio-net`, 0
what_reset:            db `reset`, 0
what_version1:         db `VERSION_1 offered`, 0
what_features_ok:      db `FEATURES_OK`, 0
what_queue_not_ready:  db `queue not yet ready`, 0
what_queue_exists:     db `queue available`, 0
what_queue_ready:      db `QueueReady`, 0
what_driver_ok:        db `DRIVER_OK`, 0
what_used:             db `wait for the used ring`, 0
what_used_id:          db `used descriptor id`, 0
what_read0:            db `read sector 0`, 0
what_write1:           db `write sector 1`, 0
what_flush:            db `flush`, 0
what_read1:            db `read sector 1`, 0
what_compare:          db `compare sector 1`, 0
what_get_id:           db `get id`, 0
what_rng_length:       db `entropy length`, 0
what_rng_zero:         db `entropy not all zero`, 0
what_rng_same:         db `two reads differ`, 0
console_line:     db `hello from virtio-console\n`
console_line_len  equ $ - console_line

CODE64_SEL equ 0x08
DATA_SEL   equ 0x10
        align 8
gdt:    dq 0
        dq 0x00AF9A000000FFFF           ; 0x08: 64-bit code
        dq 0x00CF92000000FFFF           ; 0x10: flat data
gdtr:   dw $ - gdt - 1
        dd gdt

section .bss
        alignb 4096
pml4:        resb 4096
pdpt:        resb 4096
page_dirs:   resb 4 * 4096
queue_pages: resb 2 * 4096              ; queue 0, queue 1 of the device being driven
sector_buf:  resb 512
pattern:     resb 512
rng_buf1:    resb 64
rng_buf2:    resb 64
blk_header:  resb 16
net_frame:   resb 64
id_buf:      resb 24
dec_buf:     resb 24
device_bases: resq MAX_DEVICES
device_ids:   resd MAX_DEVICES
device_count: resd 1
legacy_count: resd 1
device_name:  resq 1
queue_sizes:  resw 2
queue_avail:  resw 2
queue_used:   resw 2
blk_status:   resb 1
        alignb 16
        resb 4096
stack_top:
