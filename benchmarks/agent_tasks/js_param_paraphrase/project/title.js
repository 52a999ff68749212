const { joinWords } = require('./words');

function title(words) {
  return joinWords(words).toUpperCase();
}

module.exports = { title };
