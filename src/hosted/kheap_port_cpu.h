/*
 * hosted/kheap_port_cpu.h - the hosted port's per-CPU section, inline
 * (kheap.c includes it when PEACHOS_KHEAP_PORT_CPU_HEADER names it): a
 * thread's CPU number is one thread-local load, where a call to
 * kheap_port_cpu_enter would cost as much as the magazine work itself.
 * kheap.c uses these on its fast paths only; its slow paths call
 * kheap_port_cpu_enter, which gives a thread its number.
 * Nothing is masked: a thread's magazines are its own.
 */
#ifndef PEACHOS_KHEAP_PORT_CPU_H
#define PEACHOS_KHEAP_PORT_CPU_H

#include <stdint.h>

#if defined(PEACHOS_HOSTED_NO_CPUS) && PEACHOS_HOSTED_NO_CPUS
#error "PEACHOS_HOSTED_NO_CPUS=1: the hosted port has no per-CPU section to inline"
#endif

/* The thread's CPU number; KCACHE_NO_CPU (>= PEACHOS_KCACHE_CPUS) until
 * kheap_port_cpu_enter, the function, gives it one: the inline section
 * never assigns, so its fast path is a single load. */
extern _Thread_local unsigned kheap_hosted_cpu;

#define KHEAP_PORT_CPU_ENTER(state) (*(state) = 0, kheap_hosted_cpu)
#define KHEAP_PORT_CPU_LEAVE(state) ((void)(state))

#endif /* PEACHOS_KHEAP_PORT_CPU_H */
