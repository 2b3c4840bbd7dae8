/* The public header alone, compiled as strict C99 with -pedantic -Werror, and a C program that
 * links libmedvision and uses it (libgit2's header test). */
#include "medvision/medvision.h"

#include <stdio.h>
#include <string.h>

int main(void) {
  mv_image_load_options opts;
  mv_image* img = NULL;
  mv_status s;
  if (mv_version_number() != MV_VERSION_NUMBER) return 1;
  if (mv_image_load_options_default(&opts) != MV_OK) return 2;
  s = mv_image_load("/no/such/file.dcm", &opts, &img);
  if (s != MV_ERR_IO || img != NULL) return 3;
  if (strstr(mv_last_error(), "/no/such/file.dcm") == NULL) return 4;
  mv_image_free(img);
  printf("medvision %s (ABI %u): C99 header ok\n", mv_version_string(), (unsigned)mv_abi_version());
  return 0;
}
