// The loader behind the trampolines of trampolines.c (see load.go).

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlshim.h"
#include "hlcapi.h"

static char *hlcapi_error;

void hlcapi_set_error(const char *msg) {
  char *old = hlcapi_error;
  hlcapi_error = strdup(msg);
  free(old);
}

void hlcapi_unloaded(const char *fn) {
  fprintf(stderr, "hiddenlab: %s called, but the shim is not loaded: %s\n", fn,
          hlcapi_error ? hlcapi_error : "capi.Load was not called");
  fflush(stderr);
  exit(1);
}

int hlcapi_load(const char *path, int32_t *abi, char *err, size_t errcap, char *file, size_t filecap) {
  void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  if (h == NULL) {
    const char *e = dlerror();
    snprintf(err, errcap, "%s", e ? e : "dlopen failed");
    return HLCAPI_ERR_OPEN;
  }
  snprintf(file, filecap, "%s", path);
  void *v = dlsym(h, "hl_abi_version");
  if (v == NULL) {
    snprintf(err, errcap, "hl_abi_version");
    return HLCAPI_ERR_SYMBOL;
  }
  Dl_info info;
  if (dladdr(v, &info) != 0 && info.dli_fname != NULL) {
    snprintf(file, filecap, "%s", info.dli_fname);
  }
  *abi = ((int32_t(*)(void))v)();
  if (*abi != HL_ABI_VERSION) {
    return HLCAPI_ERR_ABI;
  }
  void **found = malloc(sizeof(void *) * (size_t)hlcapi_nsymbols);
  if (found == NULL) {
    snprintf(err, errcap, "out of memory");
    return HLCAPI_ERR_OPEN;
  }
  for (int i = 0; i < hlcapi_nsymbols; i++) {
    found[i] = dlsym(h, hlcapi_symbols[i].name);
    if (found[i] == NULL) {
      snprintf(err, errcap, "%s", hlcapi_symbols[i].name);
      free(found);
      return HLCAPI_ERR_SYMBOL;
    }
  }
  for (int i = 0; i < hlcapi_nsymbols; i++) {
    *hlcapi_symbols[i].slot = found[i];
  }
  free(found);
  return HLCAPI_OK;
}
