/* Content hashing (BLAKE2b-256) and hex encoding. */
#ifndef PM_HASH_H
#define PM_HASH_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define PM_HASH_BYTES 32
#define PM_HASH_HEX (PM_HASH_BYTES * 2 + 1) /* hex digits plus NUL */

/* Hashes len bytes of data into out. */
void pm_hash(const void *data, size_t len, uint8_t out[PM_HASH_BYTES]);

/* Incremental hashing of content that arrives in pieces (files, chunks). A plain value:
 * init, update any number of times, final once. */
typedef struct {
    crypto_generichash_state state;
} pm_hasher;
void pm_hasher_init(pm_hasher *h);
void pm_hasher_update(pm_hasher *h, const void *data, size_t len);
void pm_hasher_final(pm_hasher *h, uint8_t out[PM_HASH_BYTES]);

/* Hashes the file at path; PM_E_IO if it cannot be read. */
int pm_hash_file(const char *path, uint8_t out[PM_HASH_BYTES], uint64_t *size_out);

/* Hashes the file at path as a whole and, if chunk_size > 0, each chunk_size-byte piece
 * of it: *chunks receives a malloc'ed array of *n_chunks hashes (the caller frees it).
 * PM_E_IO if it cannot be read, PM_E_NOMEM. */
int pm_hash_file_chunks(const char *path, uint32_t chunk_size, uint8_t out[PM_HASH_BYTES],
                        uint64_t *size_out, uint8_t (**chunks)[PM_HASH_BYTES], size_t *n_chunks);

/* Writes 2*len lowercase hex digits and a NUL into out (2*len+1 bytes). */
void pm_hex_encode(const uint8_t *bin, size_t len, char *out);

/* Decodes exactly 2*len hex digits from hex into bin; PM_E_INVAL on any other input. */
int pm_hex_decode(const char *hex, uint8_t *bin, size_t len);

#endif
