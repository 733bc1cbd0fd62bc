#ifndef STSQ_CDNNL_SHIM_H
#define STSQ_CDNNL_SHIM_H
#include <oneapi/dnnl/dnnl.h>

// Macros that the Swift importer cannot see.
static inline void *stsq_dnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
static inline void *stsq_dnnl_memory_none(void) { return DNNL_MEMORY_NONE; }
static inline int stsq_dnnl_arg_src(void) { return DNNL_ARG_SRC; }
static inline int stsq_dnnl_arg_src_1(void) { return DNNL_ARG_SRC_1; }
static inline int stsq_dnnl_arg_weights(void) { return DNNL_ARG_WEIGHTS; }
static inline int stsq_dnnl_arg_bias(void) { return DNNL_ARG_BIAS; }
static inline int stsq_dnnl_arg_dst(void) { return DNNL_ARG_DST; }
static inline int stsq_dnnl_arg_from(void) { return DNNL_ARG_FROM; }
static inline int stsq_dnnl_arg_to(void) { return DNNL_ARG_TO; }
static inline int stsq_dnnl_arg_scratchpad(void) { return DNNL_ARG_SCRATCHPAD; }
/// The second input of the binary post-op at position `index` in the chain.
static inline int stsq_dnnl_arg_post_op_src_1(int index) { return DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1; }
#endif
