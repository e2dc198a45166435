# tests/boot/boot-lib.sh - what the boot tests share (sourced by
# test-boot.sh and test-boot64.sh): failures counted under the step's name
# (STEP), and the words for a QEMU exit status (docs/kernel.md's codes).
fails=0

fail() {
    echo "$STEP: FAIL: $*"
    fails=$((fails + 1))
}

explain() { # qemu exit status -> words
    case $1 in
    33) echo "success (33)" ;;
    35) echo "self-test failed (35)" ;;
    37) echo "kernel refused to boot (37)" ;;
    39) echo "kernel panic (39)" ;;
    41) echo "kheap_init failed (41)" ;;
    124) echo "TIMEOUT after ${timeout_s}s: the kernel hangs" ;;
    0) echo "exit 0: triple fault or reset, the kernel never reached isa-debug-exit" ;;
    *) echo "unexpected status $1" ;;
    esac
}
