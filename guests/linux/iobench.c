// iobench: disk throughput and IOPS from inside a Linux guest, for bench/disk_io.sh. Built static
// into hv's initramfs (guests/linux/build-images.sh), so it needs nothing but the kernel.
//
//   iobench DEVICE [MIB]     (default 32 MiB; the device must hold at least that much)
//
// Prints one line per measurement, "iobench: <test> <value> <unit>", using O_DIRECT so that the
// page cache does not answer for the disk:
//   seq-read / seq-write   1 MiB requests over the first MIB MiB, in MiB/s
//   rand-read / rand-write 4 KiB requests at random 4 KiB-aligned offsets in the same range, for
//                          about a second each, in I/O operations per second
// Writes destroy the device's contents.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int transfer(int fd, int write_it, void* buffer, size_t length, off_t offset) {
  ssize_t done = write_it ? pwrite(fd, buffer, length, offset) : pread(fd, buffer, length, offset);
  if (done != (ssize_t)length) {
    fprintf(stderr, "iobench: %s of %zu bytes at %lld: %s\n", write_it ? "write" : "read", length,
            (long long)offset, done < 0 ? strerror(errno) : "short transfer");
    return -1;
  }
  return 0;
}

static int sequential(int fd, int write_it, void* buffer, uint64_t mib) {
  const size_t chunk = 1 << 20;
  const double start = now_seconds();
  for (uint64_t i = 0; i < mib; ++i) {
    if (transfer(fd, write_it, buffer, chunk, (off_t)(i * chunk)) != 0) {
      return -1;
    }
  }
  if (write_it && fdatasync(fd) != 0) {
    perror("iobench: fdatasync");
    return -1;
  }
  const double seconds = now_seconds() - start;
  printf("iobench: seq-%s %.2f MiB/s\n", write_it ? "write" : "read", (double)mib / seconds);
  return 0;
}

static int random_io(int fd, int write_it, void* buffer, uint64_t mib) {
  const size_t block = 4096;
  const uint64_t blocks = mib * (1 << 20) / block;
  uint64_t state = 0x9e3779b97f4a7c15ull;  // fixed seed: the same offsets on every machine
  const double start = now_seconds();
  uint64_t operations = 0;
  double elapsed = 0;
  do {
    for (int i = 0; i < 16; ++i) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      if (transfer(fd, write_it, buffer, block, (off_t)((state % blocks) * block)) != 0) {
        return -1;
      }
      ++operations;
    }
    elapsed = now_seconds() - start;
  } while (elapsed < 1.0);
  if (write_it && fdatasync(fd) != 0) {
    perror("iobench: fdatasync");
    return -1;
  }
  elapsed = now_seconds() - start;
  printf("iobench: rand-%s %.0f IOPS\n", write_it ? "write" : "read", (double)operations / elapsed);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: iobench DEVICE [MIB]\n");
    return 2;
  }
  const uint64_t mib = argc == 3 ? strtoull(argv[2], NULL, 10) : 32;
  if (mib == 0) {
    fprintf(stderr, "iobench: the size must be at least 1 MiB\n");
    return 2;
  }
  const int fd = open(argv[1], O_RDWR | O_DIRECT);
  if (fd < 0) {
    fprintf(stderr, "iobench: cannot open %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  void* buffer = NULL;
  if (posix_memalign(&buffer, 4096, 1 << 20) != 0) {
    fprintf(stderr, "iobench: out of memory\n");
    return 1;
  }
  memset(buffer, 0xa5, 1 << 20);
  if (sequential(fd, 1, buffer, mib) != 0 || sequential(fd, 0, buffer, mib) != 0 ||
      random_io(fd, 0, buffer, mib) != 0 || random_io(fd, 1, buffer, mib) != 0) {
    return 1;
  }
  free(buffer);
  close(fd);
  return 0;
}
