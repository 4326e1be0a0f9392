; atadisk: drives the legacy ATA/IDE disk on the primary channel (command block 0x1f0-0x1f7,
; control 0x3f6) by polled PIO, the way an old BIOS or a hobby kernel does, and prints only what
; any correct disk of the test's image gives: never the model, serial, firmware revision or exact
; capacity, which differ between hv and QEMU. The e2e test (tests/e2e/guests_test.cpp) gives it a
; fresh 1 MiB raw image per run, `--disk IMG,if=ide` under hv and
; `-drive file=IMG,format=raw,if=ide,index=0` under QEMU, holding 32 characters of text at the
; start of sectors 0 and 1 ("hv ata test sector N" padded with dots) and a byte pattern after it.
;
;  1. IDENTIFY DEVICE (0xEC): LBA (word 49 bit 9) and LBA48 (word 83 bit 10) supported, and at
;     least 2048 sectors addressable with LBA28 (words 60-61).
;  2. READ SECTORS (0x20), LBA28, sectors 0 and 1 in one command: the text of each and a 16-bit
;     sum of its 512 bytes (which checks the whole data path, not just the text).
;  3. WRITE SECTORS (0x30) of sector 2 with bytes (i * 7 + 3) & 0xff, FLUSH CACHE (0xE7), then
;     READ SECTORS of sector 2 and a comparison. The test checks the host's file afterwards.
;  4. READ SECTORS EXT (0x24) of sector 1, the LBA48 address and count written high byte first
;     (the "HOB" register pairs), compared with what step 2 read.
;  5. READ SECTORS at LBA 0x0ffffff0, far past the end: must end with ERR.
;
; Interrupts stay off and nIEN is set: every wait polls the status register, with a bound so a
; device that never gets ready gives a message rather than a hang. Any failure prints the status
; and error registers and exits with 1 (status 3); success exits with 0 (status 1).
; Uses only port I/O (in/out, rep insw/outsw) and plain integer code, so the PVM nested KVM of
; the development machines runs it too.

%include "multiboot.inc"
%include "uart.inc"

MULTIBOOT_HEADER_ELF32

ATA_DATA     equ 0x1f0
ATA_ERROR    equ 0x1f1          ; read: error; write: features
ATA_COUNT    equ 0x1f2
ATA_LBA_LOW  equ 0x1f3
ATA_LBA_MID  equ 0x1f4
ATA_LBA_HIGH equ 0x1f5
ATA_DEVICE   equ 0x1f6
ATA_STATUS   equ 0x1f7          ; read: status (acknowledges INTRQ); write: command
ATA_CONTROL  equ 0x3f6          ; read: alternate status; write: device control

STATUS_BSY   equ 0x80
STATUS_DRQ   equ 0x08
STATUS_ERR   equ 0x01
CONTROL_NIEN equ 0x02

CMD_READ_SECTORS     equ 0x20
CMD_READ_SECTORS_EXT equ 0x24
CMD_WRITE_SECTORS    equ 0x30
CMD_FLUSH_CACHE      equ 0xe7
CMD_IDENTIFY         equ 0xec

DEVICE_MASTER_LBA    equ 0xe0   ; obsolete bits 7 and 5 set, LBA (bit 6), master (bit 4 clear)
DEVICE_LBA48         equ 0x40

WAIT_LIMIT   equ 0x1000000      ; status polls before giving up

bits 32
section .text
global _start
_start:
        cli
        cld
        mov esp, stack_top
        call uart_init

        mov dx, ATA_CONTROL             ; nIEN: no interrupts, we poll
        mov al, CONTROL_NIEN
        out dx, al
        call wait_not_busy
        mov dx, ATA_DEVICE
        mov al, DEVICE_MASTER_LBA
        out dx, al
        call delay_400ns
        call wait_not_busy

; --- 1. IDENTIFY DEVICE -------------------------------------------------------------------
        mov al, CMD_IDENTIFY
        call issue_command
        mov esi, what_identify
        call wait_data_or_fail
        mov edi, identify_data
        call read_block
        call check_done

        mov esi, msg_identify
        call uart_puts
        test word [identify_data + 49 * 2], 1 << 9
        call puts_yes_no
        mov esi, msg_lba48
        call uart_puts
        test word [identify_data + 83 * 2], 1 << 10
        call puts_yes_no
        mov al, `\n`
        call uart_putc
        mov esi, msg_sectors_at_least
        cmp dword [identify_data + 60 * 2], 2048
        jae .enough
        mov esi, msg_sectors_fewer
.enough:
        call uart_puts

; --- 2. READ SECTORS 0 and 1 (LBA28) --------------------------------------------------------
        xor eax, eax
        mov cl, 2
        call set_lba28
        mov al, CMD_READ_SECTORS
        call issue_command
        mov esi, what_read01
        call wait_data_or_fail
        mov edi, sectors01
        call read_block
        mov esi, what_read01
        call wait_data_or_fail
        mov edi, sectors01 + 512
        call read_block
        mov esi, what_read01
        call check_done

        mov al, '0'
        mov ebx, sectors01
        call print_sector
        mov al, '1'
        mov ebx, sectors01 + 512
        call print_sector

; --- 3. WRITE SECTORS 2, FLUSH CACHE, read it back -----------------------------------------
        mov edi, pattern                ; pattern[i] = (i * 7 + 3) & 0xff
        xor ecx, ecx
.fill:  lea eax, [ecx * 8]
        sub eax, ecx
        add eax, 3
        mov [edi + ecx], al
        inc ecx
        cmp ecx, 512
        jb .fill

        mov eax, 2
        mov cl, 1
        call set_lba28
        mov al, CMD_WRITE_SECTORS
        call issue_command
        mov esi, what_write2
        call wait_data_or_fail
        mov esi, pattern
        mov ecx, 256
        mov dx, ATA_DATA
        rep outsw
        mov esi, what_write2
        call check_done

        mov dx, ATA_DEVICE
        mov al, DEVICE_MASTER_LBA
        out dx, al
        mov al, CMD_FLUSH_CACHE
        call issue_command
        mov esi, what_flush
        call check_done

        mov eax, 2
        mov cl, 1
        call set_lba28
        mov al, CMD_READ_SECTORS
        call issue_command
        mov esi, what_read2
        call wait_data_or_fail
        mov edi, sector2
        call read_block
        mov esi, what_read2
        call check_done

        mov esi, pattern
        mov edi, sector2
        call compare_sector
        jne .write_mismatch
        mov esi, msg_write_ok
        call uart_puts
        jmp .lba48
.write_mismatch:
        mov esi, msg_write_bad
        call print_mismatch

; --- 4. READ SECTORS EXT of sector 1 (LBA48) -------------------------------------------------
.lba48:
        mov dx, ATA_DEVICE
        mov al, DEVICE_LBA48
        out dx, al
        xor al, al                      ; high order bytes first: count 15:8, LBA 47:24
        mov dx, ATA_COUNT
        out dx, al
        mov dx, ATA_LBA_LOW
        out dx, al
        mov dx, ATA_LBA_MID
        out dx, al
        mov dx, ATA_LBA_HIGH
        out dx, al
        mov al, 1                       ; then the low order bytes: count 7:0, LBA 23:0
        mov dx, ATA_COUNT
        out dx, al
        mov dx, ATA_LBA_LOW
        out dx, al
        xor al, al
        mov dx, ATA_LBA_MID
        out dx, al
        mov dx, ATA_LBA_HIGH
        out dx, al
        mov al, CMD_READ_SECTORS_EXT
        call issue_command
        mov esi, what_read_ext
        call wait_data_or_fail
        mov edi, sector1_ext
        call read_block
        mov esi, what_read_ext
        call check_done

        mov esi, sectors01 + 512
        mov edi, sector1_ext
        call compare_sector
        jne .ext_mismatch
        mov esi, msg_ext_ok
        call uart_puts
        jmp .past_end
.ext_mismatch:
        mov esi, msg_ext_bad
        call print_mismatch

; --- 5. READ SECTORS past the end ------------------------------------------------------------
.past_end:
        mov eax, 0x0ffffff0
        mov cl, 1
        call set_lba28
        mov al, CMD_READ_SECTORS
        call issue_command
        call wait_not_busy
        mov esi, msg_past_end_error
        test al, STATUS_ERR
        jnz .report_past_end
        mov esi, msg_past_end_no_error
.report_past_end:
        call uart_puts

        mov esi, msg_done
        call uart_puts
        DEBUG_EXIT_WITH 0

; --- helpers ----------------------------------------------------------------------------------

; Writes the command in al, then waits the 400 ns the device has to raise BSY (four reads of the
; alternate status). Clobbers dx.
issue_command:
        mov dx, ATA_STATUS
        out dx, al
delay_400ns:
        push eax
        mov dx, ATA_CONTROL
        in al, dx
        in al, dx
        in al, dx
        in al, dx
        pop eax
        ret

; Polls the alternate status until BSY is clear, then returns the status register in al (reading
; it acknowledges any interrupt). Gives up with a message after WAIT_LIMIT polls.
; Clobbers eax, ecx, dx.
wait_not_busy:
        mov ecx, WAIT_LIMIT
        mov dx, ATA_CONTROL
.poll:  in al, dx
        test al, STATUS_BSY
        jz .ready
        dec ecx
        jnz .poll
        mov esi, msg_timeout
        call uart_puts
        DEBUG_EXIT_WITH 1
.ready: mov dx, ATA_STATUS
        in al, dx
        ret

; Waits for the device to offer a data block: BSY clear with DRQ set and ERR clear. esi names
; the step for the failure message. Clobbers eax, ecx, dx.
wait_data_or_fail:
        call wait_not_busy
        test al, STATUS_ERR
        jnz fail
        test al, STATUS_DRQ
        jz fail
        ret

; After the last block of a command: BSY, DRQ and ERR must all be clear. esi names the step.
; Clobbers eax, ecx, dx.
check_done:
        call wait_not_busy
        test al, STATUS_BSY | STATUS_DRQ | STATUS_ERR
        jnz fail
        ret

; Prints "ata: <step at esi> failed: status XX error XX" (al = status) and exits with 1.
fail:
        mov bl, al
        push esi
        mov esi, msg_prefix
        call uart_puts
        pop esi
        call uart_puts
        mov esi, msg_failed_status
        call uart_puts
        mov al, bl
        call put_hex8
        mov esi, msg_error_register
        call uart_puts
        mov dx, ATA_ERROR
        in al, dx
        call put_hex8
        mov al, `\n`
        call uart_putc
        DEBUG_EXIT_WITH 1

; Reads one 512-byte block from the data port to edi. Clobbers ecx, dx, edi.
read_block:
        mov ecx, 256
        mov dx, ATA_DATA
        rep insw
        ret

; Selects the master with LBA28 address eax (bits 27:0) and sector count cl.
; Clobbers eax, dx.
set_lba28:
        push eax
        shr eax, 24
        and al, 0x0f
        or al, DEVICE_MASTER_LBA
        mov dx, ATA_DEVICE
        out dx, al
        mov al, cl
        mov dx, ATA_COUNT
        out dx, al
        pop eax
        mov dx, ATA_LBA_LOW
        out dx, al
        shr eax, 8
        mov dx, ATA_LBA_MID
        out dx, al
        shr eax, 8
        mov dx, ATA_LBA_HIGH
        out dx, al
        ret

; Prints "ata: sector <al>: <first 32 bytes at ebx> (sum 0xXXXX)", the sum being the 16-bit sum
; of the sector's 512 bytes. Clobbers eax, ecx, dx, esi, edi.
print_sector:
        mov [msg_sector_digit], al
        mov esi, msg_sector
        call uart_puts
        mov esi, ebx
        mov ecx, 32
.text:  lodsb
        push ecx
        call uart_putc
        pop ecx
        loop .text
        mov esi, msg_sum
        call uart_puts
        xor edi, edi
        xor eax, eax
        mov ecx, 512
.sum:   mov al, [ebx + ecx - 1]
        add edi, eax
        loop .sum
        mov eax, edi
        shr eax, 8
        call put_hex8
        mov eax, edi
        call put_hex8
        mov esi, msg_sum_end
        call uart_puts
        ret

; Compares the 512 bytes at esi and edi: ZF set when equal; otherwise ecx is the offset of the
; first difference.
compare_sector:
        mov ecx, 512
        repe cmpsb
        je .same
        mov eax, 511
        sub eax, ecx
        mov ecx, eax
        or eax, 1                       ; clear ZF
.same:  ret

; Prints the message at esi, then the offset in ecx in hex and a newline.
print_mismatch:
        push ecx
        call uart_puts
        pop ecx
        mov eax, ecx
        shr eax, 8
        call put_hex8
        mov eax, ecx
        call put_hex8
        mov al, `\n`
        call uart_putc
        ret

; Prints "yes" if ZF is clear (the tested bit was set), "no" otherwise.
puts_yes_no:
        mov esi, msg_yes
        jnz .print
        mov esi, msg_no
.print: jmp uart_puts

; Prints al as two hex digits. Clobbers eax, dx.
put_hex8:
        push eax
        shr al, 4
        call put_hex_digit
        pop eax
put_hex_digit:
        and al, 0x0f
        add al, '0'
        cmp al, '9'
        jbe .digit
        add al, 'a' - '9' - 1
.digit: jmp uart_putc

        UART_ROUTINES uart

section .rodata
msg_identify:          db `ata: identify ok, lba `, 0
msg_lba48:             db `, lba48 `, 0
msg_yes:               db `yes`, 0
msg_no:                db `no`, 0
msg_sectors_at_least:  db `ata: sectors >= 2048\n`, 0
msg_sectors_fewer:     db `ata: sectors < 2048\n`, 0
msg_sum:               db ` (sum 0x`, 0
msg_sum_end:           db `)\n`, 0
msg_write_ok:          db `ata: wrote sector 2, read back identical\n`, 0
msg_write_bad:         db `ata: wrote sector 2, read back differs at offset 0x`, 0
msg_ext_ok:            db `ata: lba48 read of sector 1 matches\n`, 0
msg_ext_bad:           db `ata: lba48 read of sector 1 differs at offset 0x`, 0
msg_past_end_error:    db `ata: read past the end: error\n`, 0
msg_past_end_no_error: db `ata: read past the end: no error\n`, 0
msg_done:              db `ata: done\n`, 0
msg_timeout:           db `ata: timeout waiting for BSY to clear\n`, 0
msg_prefix:            db `ata: `, 0
msg_failed_status:     db ` failed: status 0x`, 0
msg_error_register:    db ` error 0x`, 0
what_identify:         db `identify device`, 0
what_read01:           db `read sectors 0-1`, 0
what_write2:           db `write sector 2`, 0
what_flush:            db `flush cache`, 0
what_read2:            db `read sector 2`, 0
what_read_ext:         db `read sectors ext of sector 1`, 0

section .data
msg_sector:            db `ata: sector `
msg_sector_digit:      db `0: `, 0

section .bss
alignb 4
identify_data: resb 512
sectors01:     resb 1024
pattern:       resb 512
sector2:       resb 512
sector1_ext:   resb 512
        resb 256
stack_top:
