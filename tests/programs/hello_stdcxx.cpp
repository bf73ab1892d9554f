// Needs a C++ standard library: containers, strings, streams, locale-dependent parsing,
// library exceptions and threads.
#include <algorithm>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

int main() {
    std::vector<int> v{5, 3, 9, 1};
    std::sort(v.begin(), v.end());
    std::map<std::string, int> m{{"a", 1}, {"bb", 2}};
    std::istringstream in("42 word 2.5");
    int i = 0;
    std::string w;
    double d = 0;
    in >> i >> w >> d;
    bool out_of_range = false;
    try {
        (void)v.at(10);
    } catch (const std::out_of_range &) {
        out_of_range = true;
    }
    std::mutex lock;
    int count = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; t++)
        threads.emplace_back([&] {
            for (int k = 0; k < 100; k++) {
                std::lock_guard<std::mutex> g(lock);
                count++;
            }
        });
    for (auto &t : threads) t.join();
    std::ostringstream os;
    os << v.front() << v.back() << m["bb"] << i << w << d << out_of_range << count;
    std::cout << os.str() << std::endl;
    return os.str() == "19242word2.51300" ? 0 : 1;
}
