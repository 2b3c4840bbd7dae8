/* The C side of the Python parity test: classifies each file with mv_model_run (one image per
 * call) through the C ABI alone and prints one JSON line per file with every float in %.9g, which
 * round-trips float32 exactly. Usage: capi_classify MODEL FILE... */
#include <medvision/medvision.h>
#include <stdio.h>

static void print_floats(const char* key, const mv_result* r, size_t n,
                         float (*get)(const mv_result*, size_t)) {
  size_t i;
  printf(", \"%s\": [", key);
  for (i = 0; i < n; ++i) printf("%s%.9g", i ? ", " : "", (double)get(r, i));
  printf("]");
}

int main(int argc, char** argv) {
  mv_model* model = NULL;
  int i, rc = 0;
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL FILE...\n", argv[0]);
    return 1;
  }
  if (mv_model_load(argv[1], NULL, &model) != MV_OK) {
    fprintf(stderr, "%s\n", mv_last_error());
    return 2;
  }
  for (i = 2; i < argc; ++i) {
    mv_image* image = NULL;
    mv_result* result = NULL;
    size_t n;
    if (mv_image_load(argv[i], NULL, &image) != MV_OK ||
        mv_model_run(model, image, &result) != MV_OK) {
      fprintf(stderr, "%s\n", mv_last_error());
      mv_image_free(image);
      rc = 3;
      continue;
    }
    n = mv_result_label_count(result);
    printf("{\"file\": \"%s\"", argv[i]); /* test paths hold no quotes or backslashes */
    print_floats("logits", result, n, mv_result_logit);
    print_floats("probabilities", result, n, mv_result_probability);
    print_floats("calibrated", result, n, mv_result_calibrated);
    printf("}\n");
    mv_result_free(result);
    mv_image_free(image);
  }
  mv_model_free(model);
  return rc;
}
