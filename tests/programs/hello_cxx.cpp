// The C++ core language with no standard library headers: classes, virtual calls,
// templates, new/delete, RTTI and exceptions (the unwinder must find its tables).
#include <stdio.h>

struct Shape {
    virtual ~Shape() {}
    virtual int area() const = 0;
};
struct Square : Shape {
    int side;
    explicit Square(int s) : side(s) {}
    int area() const override { return side * side; }
};
struct Failure {
    int code;
};

template <typename T> T twice(T x) { return x + x; }

static int check(int v) {
    if (v > 10) throw Failure{v};
    return v;
}

int main() {
    Shape *s = new Square(3);
    int area = s->area();
    bool is_square = dynamic_cast<Square *>(s) != nullptr;
    delete s;
    int caught = 0;
    try {
        check(twice(21));
    } catch (const Failure &f) {
        caught = f.code;
    }
    printf("area=%d square=%d caught=%d\n", area, is_square, caught);
    return area == 9 && is_square && caught == 42 ? 0 : 1;
}
