/* A stand-in bcryptprimitives.dll for running the C tests under Wine 8.0
 * (Debian 12), which has none. Rust's std (1.78+) takes its random numbers
 * from ProcessPrng in bcryptprimitives.dll, present on every Windows 10 and
 * later; yilian.dll imports it, so without this Wine cannot load the DLL.
 * scripts/cross/windows.sh builds it next to the test programs only: it is
 * never shipped. It answers from BCryptGenRandom (the system RNG), which
 * Wine has. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG))) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
