// Template generator of the built-in corpus (see builtin_corpus.h).
#include "ember/data/builtin_corpus.h"

#include <algorithm>
#include <array>
#include <string_view>
#include <vector>

#include "ember/core/error.h"

#include "ember/util/splitmix.h"
namespace ember::data {

namespace {

using Words = std::vector<std::string_view>;

const Words kNames = {"Anna", "Ben", "Clara", "David", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack",
                      "Lena", "Leo", "Mia", "Noah", "Olga", "Paul", "Rosa", "Sam", "Tara", "Tom"};
const Words kPlaces = {"the park", "the garden", "the kitchen", "the school", "the library", "the market",
                       "the beach", "the forest", "the farm", "the station", "the bakery", "the river"};
const Words kTowns = {"a small village", "a big city", "a quiet town", "a farm by the hills", "a house near the sea"};
// (singular, plural)
const std::vector<std::pair<std::string_view, std::string_view>> kThings = {
    {"apple", "apples"}, {"book", "books"}, {"ball", "balls"}, {"cup", "cups"}, {"pencil", "pencils"},
    {"flower", "flowers"}, {"cookie", "cookies"}, {"shell", "shells"}, {"stone", "stones"}, {"egg", "eggs"},
    {"orange", "oranges"}, {"card", "cards"}, {"box", "boxes"}, {"key", "keys"}, {"hat", "hats"}};
const Words kColours = {"red", "blue", "green", "yellow", "white", "black", "brown", "orange", "purple"};
// (animal, size rank): bigger rank = bigger animal
const std::vector<std::pair<std::string_view, int>> kAnimals = {
    {"mouse", 1}, {"bird", 2}, {"cat", 3}, {"rabbit", 3}, {"dog", 4}, {"goat", 5},
    {"horse", 7}, {"cow", 7}, {"bear", 8}, {"elephant", 10}, {"whale", 11}};
const Words kFeelings = {"happy", "tired", "hungry", "curious", "proud", "sleepy", "excited", "calm"};
const Words kWeather = {"sunny", "rainy", "windy", "cold", "warm", "cloudy", "snowy"};
const Words kDays = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
const Words kActivities = {"reads a book", "plays with a ball", "draws a picture", "sings a song",
                           "waters the plants", "helps a friend", "bakes bread", "walks the dog",
                           "writes a letter", "paints the fence", "fixes a bicycle", "feeds the chickens",
                           "cleans the windows", "plays the piano", "builds a kite", "picks strawberries",
                           "learns new words", "visits grandmother", "counts the stars", "plants a tree"};
const Words kJobs = {"baker", "teacher", "farmer", "doctor", "painter", "builder", "fisher", "driver",
                     "gardener", "librarian", "carpenter", "tailor", "nurse", "pilot", "cook", "musician"};
const Words kGoods = {"loaves of bread", "baskets of apples", "jars of honey", "bags of flour", "bottles of milk",
                      "pairs of shoes", "boxes of tea", "bunches of carrots", "wheels of cheese", "sacks of potatoes"};
// Syllables for the names of the generated world's towns and families.
const Words kSyllables = {"bram", "wick", "tol", "len", "dale", "mor", "ford", "ash", "ton", "ber", "gar", "vel",
                          "lin", "cas", "tor", "fen", "hol", "rid", "wen", "mar", "stan", "brook", "field", "shaw",
                          "cliff", "ley", "ham", "port", "by", "kel", "dor", "win", "thorn", "mill", "row", "an",
                          "el", "is", "or", "ur", "ing", "ster", "bury", "wood", "mere", "gate", "well", "stone"};

// The generator's own stream (see util/splitmix.h).
class Rng : public SplitMix64 {
 public:
  explicit Rng(uint64_t seed) : SplitMix64(seed, 0x6A09E667F3BCC908ull) {}
};

std::string cap(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}
std::string S(std::string_view v) { return std::string(v); }
std::string count_of(int n, const std::pair<std::string_view, std::string_view>& thing) {
  return number_words(n) + " " + S(n == 1 ? thing.first : thing.second);
}
std::string pronoun(std::string_view name) {
  static const Words she = {"Anna", "Clara", "Emma", "Grace", "Iris", "Lena", "Mia", "Olga", "Rosa", "Tara"};
  for (auto n : she) if (n == name) return "she";
  return "he";
}

// Two different names.
std::pair<std::string, std::string> two_names(Rng& r) {
  std::string a = S(r.pick(kNames)), b;
  do b = S(r.pick(kNames)); while (b == a);
  return {a, b};
}

std::string counting_story(Rng& r) {
  auto [a, b] = two_names(r);
  const auto& thing = r.pick(kThings);
  int have = r.between(1, 9), give = r.between(1, 9);
  std::string s = a + " has " + count_of(have, thing) + ". " + b + " gives " + a + " " + count_of(give, thing) +
                  ". Now " + a + " has " + count_of(have + give, thing) + ".";
  if (r.below(2)) {
    int eat = r.between(1, have + give);
    s += " Then " + a + " gives " + count_of(eat, thing) + " to " + b + ". " + cap(pronoun(a)) + " has " +
         count_of(have + give - eat, thing) + " left.";
  }
  return s + "\n";
}

std::string arithmetic(Rng& r) {
  std::string s;
  const int n = r.between(2, 5);
  for (int i = 0; i < n; ++i) {
    int x = r.between(0, 12), y = r.between(0, 12);
    switch (r.below(3)) {
      case 0:
        s += "What is " + number_words(x) + " plus " + number_words(y) + "? " + cap(number_words(x)) + " plus " +
             number_words(y) + " is " + number_words(x + y) + ".\n";
        break;
      case 1:
        if (x < y) std::swap(x, y);
        s += "What is " + number_words(x) + " minus " + number_words(y) + "? " + cap(number_words(x)) + " minus " +
             number_words(y) + " is " + number_words(x - y) + ".\n";
        break;
      default:
        s += "What is " + number_words(x) + " times " + number_words(y) + "? " + cap(number_words(x)) + " times " +
             number_words(y) + " is " + number_words(x * y) + ".\n";
    }
  }
  return s;
}

std::string counting(Rng& r) {
  const int start = r.between(1, 20), len = r.between(3, 8);
  std::string s = "Let us count. ";
  for (int i = 0; i < len; ++i) s += (i ? ", " : "") + (i ? number_words(start + i) : cap(number_words(start + i)));
  s += ". After " + number_words(start + len - 1) + " comes " + number_words(start + len) + ". Before " +
       number_words(start) + " comes " + number_words(start - 1) + ".\n";
  return s;
}

std::string comparison(Rng& r) {
  std::string s;
  for (int i = 0, n = r.between(2, 4); i < n; ++i) {
    const auto& x = r.pick(kAnimals);
    const auto& y = r.pick(kAnimals);
    if (x.second == y.second) {
      s += "A " + S(x.first) + " and a " + S(y.first) + (x.first == y.first ? " are the same animal.\n" : " are about the same size.\n");
    } else if (x.second > y.second) {
      s += "A " + S(x.first) + " is bigger than a " + S(y.first) + ". A " + S(y.first) + " is smaller than a " + S(x.first) + ".\n";
    } else {
      s += "Is a " + S(x.first) + " bigger than a " + S(y.first) + "? No, a " + S(x.first) + " is smaller than a " + S(y.first) + ".\n";
    }
  }
  return s;
}

std::string routine(Rng& r) {
  const std::string a = S(r.pick(kNames)), p = pronoun(a);
  std::string s = a + " lives in " + S(r.pick(kTowns)) + ". ";
  const int start = r.below(7);
  for (int i = 0, n = r.between(2, 4); i < n; ++i) {
    s += "On " + S(kDays[static_cast<size_t>((start + i) % 7)]) + " " + p + " goes to " + S(r.pick(kPlaces)) +
         " and " + S(r.pick(kActivities)) + ". ";
  }
  s += "At the end of the week " + a + " is " + S(r.pick(kFeelings)) + ".\n";
  return s;
}

std::string dialogue(Rng& r) {
  auto [a, b] = two_names(r);
  const auto& thing = r.pick(kThings);
  const std::string colour = S(r.pick(kColours)), place = S(r.pick(kPlaces));
  std::string s = a + ": Where is my " + colour + " " + S(thing.first) + "?\n" + b + ": Your " + colour + " " +
                  S(thing.first) + " is in " + place + ".\n" + a + ": Thank you, " + b + "! How many " +
                  S(thing.second) + " do you have?\n";
  const int n = r.between(0, 12);
  s += b + ": I have " + (n == 0 ? "no " + S(thing.second) : count_of(n, thing)) + ".\n";
  if (r.below(2)) s += a + ": The weather is " + S(r.pick(kWeather)) + " today. Shall we go to " + S(r.pick(kPlaces)) + "?\n" + b + ": Yes, let us go.\n";
  return s;
}

std::string story(Rng& r) {
  auto [a, b] = two_names(r);
  const auto& animal = r.pick(kAnimals);
  const auto& thing = r.pick(kThings);
  const std::string colour = S(r.pick(kColours)), place = S(r.pick(kPlaces)), weather = S(r.pick(kWeather));
  const std::string p = pronoun(a);
  std::string s = "Once upon a time, " + a + " lived in " + S(r.pick(kTowns)) + ". One " + weather + " day, " + p +
                  " went to " + place + " and found a " + colour + " " + S(thing.first) + ". ";
  s += "Near the " + S(thing.first) + " sat a little " + S(animal.first) + ". \"Is this yours?\" asked " + a + ". ";
  s += "The " + S(animal.first) + " did not answer, so " + a + " took the " + S(thing.first) + " home and showed it to " + b + ". ";
  s += b + " said, \"That " + S(thing.first) + " belongs to the " + S(animal.first) + " in " + place + ".\" ";
  s += "The next day " + a + " and " + b + " walked back to " + place + " and gave the " + S(thing.first) +
       " back. The " + S(animal.first) + " was " + S(r.pick(kFeelings)) + ", and " + a + " was " +
       S(r.pick(kFeelings)) + " too. The end.\n";
  return s;
}


// The generated world: towns and family names made of syllables, fixed by the
// seed. They give the corpus a vocabulary of a few thousand proper names, so
// a BPE tokenizer trained on it reaches a realistic vocabulary size.
struct World {
  std::vector<std::string> towns, families;
  explicit World(Rng& r) {
    auto name = [&](int parts) {
      std::string n;
      for (int i = 0; i < parts; ++i) n += S(r.pick(kSyllables));
      return cap(n);
    };
    for (int i = 0; i < 4000; ++i) towns.push_back(name(r.between(2, 3)));
    for (int i = 0; i < 4000; ++i) families.push_back(name(r.between(2, 3)));
  }
};

std::string with_commas(int n) {
  std::string d = std::to_string(n), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}

std::string town_news(Rng& r, const World& w) {
  const std::string town = r.pick(w.towns), family = r.pick(w.families);
  const std::string first = S(r.pick(kNames)), job = S(r.pick(kJobs)), goods = S(r.pick(kGoods));
  const int people = r.between(120, 98000), year = r.between(1700, 2024);
  const int count = r.between(2, 60), price = r.between(1, 25);
  std::string s = town + " is a town of " + with_commas(people) + " people. It was founded in " +
                  std::to_string(year) + ". ";
  s += first + " " + family + " is the " + job + " of " + town + ". Every day " + pronoun(first) + " sells " +
       std::to_string(count) + " " + goods + " for " + std::to_string(price) + " dollars each, which makes " +
       std::to_string(count * price) + " dollars a day. ";
  s += "The " + family + " family has lived in " + town + " for " + std::to_string(r.between(2, 9)) +
       " generations. ";
  const std::string other = r.pick(w.towns);
  const int km = r.between(3, 400);
  s += "The road from " + town + " to " + other + " is " + std::to_string(km) + " kilometres long. ";
  if (r.below(2)) {
    const int speed = r.between(2, 12) * 10;
    s += "A bus that drives " + std::to_string(speed) + " kilometres an hour needs about " +
         std::to_string((km + speed / 2) / speed) + " hours to get to " + other + ".";
  } else {
    const int h = r.between(5, 21), m = r.below(12) * 5;
    s += "The first train to " + other + " leaves at " + std::to_string(h) + ":" + (m < 10 ? "0" : "") +
         std::to_string(m) + ", and the last train from " + other + " comes back at " + std::to_string(h + 2) +
         ":" + (m < 10 ? "0" : "") + std::to_string(m) + ".";
  }
  return s + "\n";
}

std::string digit_math(Rng& r) {
  std::string s;
  for (int i = 0, n = r.between(3, 6); i < n; ++i) {
    const int x = r.between(0, 999), y = r.between(0, 999);
    switch (r.below(3)) {
      case 0: s += std::to_string(x) + " + " + std::to_string(y) + " = " + std::to_string(x + y) + "\n"; break;
      case 1: s += std::to_string(std::max(x, y)) + " - " + std::to_string(std::min(x, y)) + " = " + std::to_string(std::max(x, y) - std::min(x, y)) + "\n"; break;
      default: {
        const int a = r.between(2, 99), b = r.between(2, 99);
        s += std::to_string(a) + " x " + std::to_string(b) + " = " + std::to_string(a * b) + "\n";
      }
    }
  }
  return s;
}
}  // namespace

std::string number_words(int n) {
  static const std::array<const char*, 20> small = {
      "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
      "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  static const std::array<const char*, 10> tens = {"", "", "twenty", "thirty", "forty", "fifty",
                                                   "sixty", "seventy", "eighty", "ninety"};
  EMBER_CHECK(n >= 0 && n <= 999, "data", "number_words: ", n, " is outside 0..999");
  if (n < 20) return small[static_cast<size_t>(n)];
  if (n < 100) return std::string(tens[static_cast<size_t>(n / 10)]) + (n % 10 ? std::string("-") + small[static_cast<size_t>(n % 10)] : "");
  return std::string(small[static_cast<size_t>(n / 100)]) + " hundred" + (n % 100 ? " and " + number_words(n % 100) : "");
}

std::string builtin_corpus(uint64_t bytes, uint64_t seed) {
  Rng r(seed);
  const World world(r);
  std::string out;
  out.reserve(bytes + 4096);
  while (out.size() < bytes) {
    std::string doc;
    // A document mixes a few paragraphs of one or two kinds, like a page of a children's workbook.
    for (int i = 0, n = r.between(1, 3); i < n; ++i) {
      if (i) doc += "\n";
      switch (r.below(11)) {
        case 7: case 9: case 10: doc += town_news(r, world); break;
        case 8: doc += digit_math(r); break;
        case 0: doc += counting_story(r); break;
        case 1: doc += arithmetic(r); break;
        case 2: doc += counting(r); break;
        case 3: doc += comparison(r); break;
        case 4: doc += routine(r); break;
        case 5: doc += dialogue(r); break;
        default: doc += story(r);
      }
    }
    out += doc;
    out += "<|endoftext|>\n";
  }
  return out;
}

}  // namespace ember::data
