/* independent LFSR113 (L'Ecuyer 1999) with the 64->32 seed fold, for fixed test vectors */
#include <stdio.h>
#include <stdint.h>
static uint32_t z[4];
static uint32_t lo(uint32_t x, uint32_t m) { return x < m ? x + m : x; }
static void seed(uint64_t s) {
  uint32_t i = (uint32_t)((s >> 32) ^ (s << 10) ^ s);
  z[0] = lo(i, 2); z[1] = lo(i, 8); z[2] = lo(i, 16); z[3] = lo(i, 128);
}
static uint32_t next(void) {
  uint32_t b;
  b = ((z[0] << 6) ^ z[0]) >> 13; z[0] = ((z[0] & 4294967294U) << 18) ^ b;
  b = ((z[1] << 2) ^ z[1]) >> 27; z[1] = ((z[1] & 4294967288U) << 2) ^ b;
  b = ((z[2] << 13) ^ z[2]) >> 21; z[2] = ((z[2] & 4294967280U) << 7) ^ b;
  b = ((z[3] << 3) ^ z[3]) >> 12; z[3] = ((z[3] & 4294967168U) << 13) ^ b;
  return z[0] ^ z[1] ^ z[2] ^ z[3];
}
int main(void) {
  uint64_t seeds[] = {0, 1, 0xdeadbeefULL, 0x123456789abcdef0ULL, 0xffffffffffffffffULL};
  for (int s = 0; s < 5; s++) {
    seed(seeds[s]);
    printf("0x%llx:", (unsigned long long)seeds[s]);
    for (int j = 0; j < 6; j++) printf(" %u", next());
    printf("\n");
  }
  /* a Fisher-Yates permutation of 10 from seed 42 */
  seed(42); unsigned l[10]; for (int i = 0; i < 10; i++) l[i] = i;
  for (int i = 9; i > 0; i--) { unsigned r = next() % (i + 1); unsigned t = l[i]; l[i] = l[r]; l[r] = t; }
  printf("perm42:"); for (int i = 0; i < 10; i++) printf(" %u", l[i]); printf("\n");
  return 0;
}
