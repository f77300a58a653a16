#!/bin/sh
# Writes a 129-byte static x86-64 ELF program that calls exit(0): the
# executable of the corpus images (corpus/README.md).
# Usage: make-exit0-elf.sh FILE
set -eu
out=$1
{
  # ELF header: magic, 64-bit, little endian, version 1, System V ABI
  printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000'
  printf '\002\000\076\000\001\000\000\000'          # ET_EXEC, EM_X86_64, EV_CURRENT
  printf '\170\000\100\000\000\000\000\000'          # e_entry 0x400078
  printf '\100\000\000\000\000\000\000\000'          # e_phoff 64
  printf '\000\000\000\000\000\000\000\000'          # e_shoff 0
  printf '\000\000\000\000\100\000\070\000'          # e_flags, e_ehsize 64, e_phentsize 56
  printf '\001\000\000\000\000\000\000\000'          # e_phnum 1, no sections
  # one PT_LOAD, read + execute, the whole file at 0x400000
  printf '\001\000\000\000\005\000\000\000'
  printf '\000\000\000\000\000\000\000\000'          # p_offset
  printf '\000\000\100\000\000\000\000\000'          # p_vaddr
  printf '\000\000\100\000\000\000\000\000'          # p_paddr
  printf '\201\000\000\000\000\000\000\000'          # p_filesz 129
  printf '\201\000\000\000\000\000\000\000'          # p_memsz 129
  printf '\000\020\000\000\000\000\000\000'          # p_align 4096
  # xor edi, edi; mov eax, 60 (exit); syscall
  printf '\061\377\270\074\000\000\000\017\005'
} >"$out"
chmod 0755 "$out"
