/* minimal.c: decode an image with libmedvision's C API and print what it holds.
 * Build: cc minimal.c $(pkg-config --cflags --libs medvision) */
#include <medvision/medvision.h>
#include <stdio.h>

int main(int argc, char** argv) {
  mv_image* img = NULL;
  int64_t shape[4];
  double spacing[3];
  const char* modality;
  mv_status status;
  if (argc != 2) {
    fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
    return 2;
  }
  status = mv_image_load(argv[1], NULL, &img);
  if (status != MV_OK) {
    fprintf(stderr, "%s: %s\n", mv_status_name(status), mv_last_error());
    return 1;
  }
  mv_image_shape(img, shape);
  mv_image_spacing(img, spacing);
  modality = mv_image_meta(img, "Modality");
  printf(
      "%s: %lld channel(s), %lld x %lld x %lld voxels, spacing %.3f x %.3f x %.3f mm, "
      "modality %s\n",
      argv[1], (long long)shape[0], (long long)shape[3], (long long)shape[2], (long long)shape[1],
      spacing[0], spacing[1], spacing[2], modality ? modality : "-");
  mv_image_free(img);
  return 0;
}
