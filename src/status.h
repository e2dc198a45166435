/*
 * status.h - error codes. Functions return 0 (PEACHOS_ALL_OK) on success and
 * the negated code on failure, e.g. `return -EINVARG;`.
 */
#ifndef PEACHOS_STATUS_H
#define PEACHOS_STATUS_H

#define PEACHOS_ALL_OK 0
#define EIO 1      /* input/output error */
#define EINVARG 2  /* invalid argument */
#define ENOMEM 3   /* out of memory */
#define ECORRUPT 4 /* heap_check found a broken invariant (our addition) */

#endif /* PEACHOS_STATUS_H */
