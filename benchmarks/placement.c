/* The cache-line round trip between two CPUs, in nanoseconds (placement.py builds and
   runs it). Usage: placement CPU_A CPU_B MILLISECONDS -> prints one number.

   One thread on each CPU passes a counter back and forth through one cache line; the
   time per round trip is two transfers of that line. On a VM it tells whether the
   hypervisor has put the two virtual CPUs on cores that share a last-level cache (tens of
   ns) or not (hundreds): loopback TCP between a server and its load generator moves the
   same kind of lines for every request. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Atomic long ball __attribute__((aligned(64)));
static atomic_int done, partner_failed;

static int pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *partner(void *arg) {
  long want = 1;
  if (pin(*(int *) arg) != 0) {
    atomic_store(&partner_failed, 1);
    return NULL;
  }
  while (!atomic_load(&done)) {
    if (atomic_load_explicit(&ball, memory_order_acquire) == want) {
      atomic_store_explicit(&ball, want + 1, memory_order_release);
      want += 2;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s CPU_A CPU_B MILLISECONDS\n", argv[0]);
    return 2;
  }
  int a = atoi(argv[1]), b = atoi(argv[2]);
  double seconds = atoi(argv[3]) / 1000.0, start, elapsed = 0;
  long trips = 0, value = 0;
  pthread_t thread;
  if (pin(a) != 0 || pthread_create(&thread, NULL, partner, &b) != 0) {
    fprintf(stderr, "placement: cannot run on CPUs %d and %d\n", a, b);
    return 1;
  }
  start = now_s();
  do {
    for (int k = 0; k < 256; k++) {
      atomic_store_explicit(&ball, value + 1, memory_order_release);
      value += 2;
      while (atomic_load_explicit(&ball, memory_order_acquire) != value) {
        if (atomic_load_explicit(&partner_failed, memory_order_relaxed)) goto stop;
      }
    }
    trips += 256;
    elapsed = now_s() - start;
  } while (elapsed < seconds);
stop:
  atomic_store(&done, 1);
  pthread_join(thread, NULL);
  if (atomic_load(&partner_failed)) {
    fprintf(stderr, "placement: cannot run on CPU %d\n", b);
    return 1;
  }
  printf("%.1f\n", elapsed / trips * 1e9);
  return 0;
}
