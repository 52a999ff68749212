library(dplyr)
source("helpers.R")

total_price <- function(items) {
  sum(items$price)
}

summarise_inventory = function(df) {
  df %>% group_by(category) %>% summarise(total = total_price(.data))
}

result <- summarise_inventory(read.csv("items.csv"))
