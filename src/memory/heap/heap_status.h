/*
 * heap_status.h - the error codes the memory library returns (negated:
 * `return -EINVARG;`). The kernel's own src/status.h comes first; the
 * library only adds what it lacks, with values that clash with none of
 * PeachOS's (1..9 in the 32-bit kernel, 1..11 in the 64-bit course).
 */
#ifndef PEACHOS_HEAP_STATUS_H
#define PEACHOS_HEAP_STATUS_H

#include "../../status.h"

#ifndef PEACHOS_ALL_OK
#define PEACHOS_ALL_OK 0
#endif
#ifndef EINVARG
#define EINVARG 2 /* invalid argument */
#endif
#ifndef ENOMEM
#define ENOMEM 3 /* out of memory */
#endif
/* heap_check found a broken invariant: far from the kernel's own codes. */
#ifndef ECORRUPT
#define ECORRUPT 64
#endif

#endif /* PEACHOS_HEAP_STATUS_H */
