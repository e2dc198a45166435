/*
 * status.h - the demo kernel's error codes, PeachOS's values. Functions
 * return 0 (PEACHOS_ALL_OK) on success and the negated code on failure,
 * e.g. `return -EINVARG;`. The memory library adds ECORRUPT in
 * src/memory/heap/heap_status.h.
 */
#ifndef PEACHOS_STATUS_H
#define PEACHOS_STATUS_H

#define PEACHOS_ALL_OK 0
#define EIO 1       /* input/output error */
#define EINVARG 2   /* invalid argument */
#define ENOMEM 3    /* out of memory */
#define EBADPATH 4  /* bad path */
#define EFSNOTUS 5  /* not this filesystem */
#define ERDONLY 6   /* read only */
#define EUNIMP 7    /* not implemented */
#define EISTKN 8    /* already taken */
#define EINFORMAT 9 /* bad format */

#endif /* PEACHOS_STATUS_H */
