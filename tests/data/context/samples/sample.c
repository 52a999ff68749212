#include <stdio.h>
#include "buffer.h"

#define BUFFER_SIZE 64

struct buffer {
    char data[BUFFER_SIZE];
    size_t length;
};

typedef struct buffer buffer_t;

static int buffer_append(buffer_t *buf, const char *text) {
    size_t n = strlen(text);
    memcpy(buf->data + buf->length, text, n);
    buf->length += n;
    return 0;
}

int main(void) {
    buffer_t buf = {0};
    buffer_append(&buf, "hello");
    printf("%s\n", buf.data);
    return 0;
}
