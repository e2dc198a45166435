/*
 * tests/fuzz/replay_main.c - runs a fuzz target's LLVMFuzzerTestOneInput on
 * the files named on the command line, without libFuzzer. Lets any compiler
 * (gcc --coverage for `make coverage`) replay the corpus.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv)
{
    int replayed = 0;
    for (int i = 1; i < argc; i++) {
        FILE* f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        uint8_t* copy = malloc(n == 0 ? 1 : n); /* exact size, like libFuzzer */
        if (copy == NULL) {
            return 1;
        }
        for (size_t j = 0; j < n; j++) {
            copy[j] = buf[j];
        }
        LLVMFuzzerTestOneInput(copy, n);
        free(copy);
        replayed++;
    }
    printf("replayed %d inputs\n", replayed);
    return 0;
}
