#include <vector>
#include "shape.hpp"

namespace geometry {

class Circle : public Shape {
public:
    explicit Circle(double radius) : radius_(radius) {}
    double area() const override { return 3.14159 * radius_ * radius_; }

private:
    double radius_;
};

double total_area(const std::vector<Shape*>& shapes) {
    double sum = 0;
    for (auto* shape : shapes) {
        sum += shape->area();
    }
    return sum;
}

}  // namespace geometry
